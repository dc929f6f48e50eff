"""BentoML 1.4: ``bentoml serve`` of ``apps/bentoml_service.py`` (2 workers), the model
from BentoML's model store; a second row with ``batchable=True`` (adaptive batching)."""

from __future__ import annotations

from typing import Any

import orjson

from bench.peers import PANDAS, SKLEARN, Launch, ModelInfo, Peer, Venv, label_of_probabilities
from bench.workspace import BENCH, Workspace


def venv(ws: Workspace) -> Venv:
    return Venv("bentoml", (SKLEARN, PANDAS, "bentoml==1.4.39"), export="bentoml")


def home(ws: Workspace) -> str:
    return str(ws.work / "bentoml")


def launcher(batchable: bool) -> Any:
    def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
        argv = [
            str(ws.tool("bentoml", "bentoml")),
            # BentoML types a DataFrame API's input as pd.DataFrame: a service of its own
            "serve", "bentoml_service:" + ("Tabular" if model.frame else "Model"),
            "--working-dir", str(BENCH / "apps"),
            "--host", "127.0.0.1",
            "--port", str(port),
        ]  # fmt: skip
        return Launch(
            argv=argv,
            url=f"http://127.0.0.1:{port}/predict",
            body=orjson.dumps({"inputs": [model.as_record() if model.frame else model.record]}),
            env={
                "BENTOML_HOME": home(ws),
                "BENTOML_DO_NOT_TRACK": "True",
                "BENCH_MODEL": model.name,
                "BENCH_BATCHABLE": "1" if batchable else "0",
            },
            cwd=ws.work,
        )

    return launch


def answer(body: Any, model: ModelInfo) -> str:
    return label_of_probabilities(body[0], model)


PEERS = [
    Peer(
        name="bentoml",
        title="BentoML",
        kind="framework",
        venv="bentoml",
        launch=launcher(batchable=False),
        answer=answer,
    ),
    Peer(
        name="bentoml-batchable",
        title="BentoML, `batchable=True`",
        kind="framework",
        venv="bentoml",
        launch=launcher(batchable=True),
        answer=answer,
    ),
]
