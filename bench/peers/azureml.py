"""azureml-inference-server-http (``azmlinfsrv``): Flask on gunicorn, 2 workers, with its
default access log, serving the Azure ML scoring script ``apps/azureml_score.py``."""

from __future__ import annotations

import orjson

from bench.peers import PANDAS, SKLEARN, WORKERS, Launch, ModelInfo, Peer, Venv
from bench.peers.starlette_app import answer
from bench.workspace import BENCH, Workspace


def venv(ws: Workspace) -> Venv:
    return Venv("azureml", (SKLEARN, PANDAS, "azureml-inference-server-http==1.5.1"))


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    argv = [
        str(ws.python("azureml")),
        str(BENCH / "apps" / "azureml_launch.py"),
        "--entry_script", str(BENCH / "apps" / "azureml_score.py"),
        "--model_dir", str(model.folder),
        "--port", str(port),
        "--worker_count", str(WORKERS),
    ]  # fmt: skip
    return Launch(
        argv=argv,
        url=f"http://127.0.0.1:{port}/score",
        # a DataFrame model takes records, as Azure ML's pandas examples send them
        body=orjson.dumps({"data": [model.as_record() if model.frame else model.record]}),
        env={"GUNICORN_CMD_ARGS": "--no-control-socket"},  # see flask_app.py
        cwd=ws.work,
    )


PEERS = [
    Peer(
        name="azureml",
        title="azureml-inference-server-http",
        kind="framework",
        venv="azureml",
        launch=launch,
        answer=answer,
    )
]
