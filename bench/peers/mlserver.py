"""MLServer 1.7 with its scikit-learn runtime, ``parallel_workers: 2``, the Open Inference
Protocol (V2) request asking for ``predict_proba``."""

from __future__ import annotations

import json
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
from bench.workspace import Workspace, free_port


def venv(ws: Workspace) -> Venv:
    # uvloop 0.22+ raises in MLServer 1.7.1's parallel workers (asyncio.get_event_loop()
    # with no loop set): "There is no current event loop in thread 'MainThread'".
    return Venv(
        "mlserver",
        (SKLEARN, PANDAS, "mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"),
    )


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    # One repository folder per run: settings.json (ports) + the model's folder.
    repository = ws.work / "mlserver" / model.name
    folder = repository / model.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model.name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model.joblib)},
            }
        )
    )
    (repository / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "metrics_dir": str(repository / ".metrics"),
                "parallel_workers": WORKERS,
            }
        )
    )
    body = (
        frame_request(model)
        if model.frame
        else {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, len(model.record)],
                    "datatype": "FP64",
                    "data": model.record,
                }
            ],
            "outputs": [{"name": "predict_proba"}],
        }
    )
    return Launch(
        argv=[str(ws.tool("mlserver", "mlserver")), "start", str(repository)],
        url=f"http://127.0.0.1:{port}/v2/models/{model.name}/infer",
        body=orjson.dumps(body),
        cwd=repository,
    )


def frame_request(model: ModelInfo) -> dict[str, Any]:
    """MLServer's pandas codec (its docs on content types): one input per column, the
    request marked ``pd``, text columns as BYTES marked ``str``."""
    inputs: list[dict[str, Any]] = []
    for name, value in model.as_record().items():
        column: dict[str, Any] = {"name": name, "shape": [1], "data": [value]}
        if isinstance(value, str):
            column |= {"datatype": "BYTES", "parameters": {"content_type": "str"}}
        else:
            column["datatype"] = "FP64"
        inputs.append(column)
    return {
        "parameters": {"content_type": "pd"},
        "inputs": inputs,
        "outputs": [{"name": "predict_proba"}],
    }


def answer(body: Any, model: ModelInfo) -> str:
    return label_of_probabilities(body["outputs"][0]["data"], model)


PEERS = [
    Peer(
        name="mlserver",
        title="MLServer (scikit-learn runtime)",
        kind="framework",
        venv="mlserver",
        launch=launch,
        answer=answer,
    )
]
