"""MLflow 3: ``mlflow models serve -w 2 --env-manager local`` of an MLflow model folder
saved with ``pyfunc_predict_fn="predict_proba"``."""

from __future__ import annotations

from typing import Any

import orjson

from bench.peers import (
    PANDAS,
    SKLEARN,
    WORKERS,
    Launch,
    ModelInfo,
    Peer,
    Venv,
    label_of_probabilities,
)
from bench.workspace import Workspace


def venv(ws: Workspace) -> Venv:
    return Venv("mlflow", (SKLEARN, PANDAS, "mlflow==3.17.2"), export="mlflow")


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    argv = [
        str(ws.tool("mlflow", "mlflow")),
        "models", "serve",
        "--model-uri", str(ws.work / "mlflow" / model.name),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(WORKERS),
        "--env-manager", "local",
    ]  # fmt: skip
    return Launch(
        argv=argv,
        url=f"http://127.0.0.1:{port}/invocations",
        # MLflow's scoring protocol: a DataFrame model takes dataframe_records
        body=orjson.dumps(
            {"dataframe_records": [model.as_record()]}
            if model.frame
            else {"inputs": [model.record]}
        ),
        env={"MLFLOW_TRACKING_URI": str(ws.work / "mlruns")},
        cwd=ws.work,
    )


def answer(body: Any, model: ModelInfo) -> str:
    return label_of_probabilities(body["predictions"][0], model)


PEERS = [
    Peer(
        name="mlflow",
        title="MLflow `models serve`",
        kind="framework",
        venv="mlflow",
        launch=launch,
        answer=answer,
    )
]
