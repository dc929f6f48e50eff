"""Hand-written Flask on gunicorn sync workers (2), the tutorial way: one request per
connection at a time, no keep-alive."""

from __future__ import annotations

import orjson

from bench.peers import ONE_THREAD, PANDAS, SKLEARN, WORKERS, Launch, ModelInfo, Peer, Venv
from bench.peers.starlette_app import answer
from bench.workspace import BENCH, Workspace


def venv(ws: Workspace) -> Venv:
    return Venv("flask", (SKLEARN, PANDAS, "flask==3.1.3", "gunicorn==27.0.1"))


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    argv = [
        str(ws.tool("flask", "gunicorn")),
        "--workers", str(WORKERS),
        "--bind", f"127.0.0.1:{port}",
        "--chdir", str(BENCH / "apps"),
        "flask_app:app",
    ]  # fmt: skip
    return Launch(
        argv=argv,
        url=f"http://127.0.0.1:{port}/predict",
        body=orjson.dumps(model.as_record()),
        # gunicorn 27 opens a control socket under $HOME by default, shared by every
        # gunicorn on the machine: the benchmark's servers stay out of it.
        env={
            "BENCH_MODEL_DIR": str(model.folder),
            "GUNICORN_CMD_ARGS": "--no-control-socket",
            **ONE_THREAD,
        },
    )


PEERS = [
    Peer(
        name="flask",
        title="hand-written Flask + gunicorn sync",
        kind="hand-written",
        venv="flask",
        launch=launch,
        answer=answer,
    )
]
