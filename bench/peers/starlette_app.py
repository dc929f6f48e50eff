"""Hand-written Starlette + uvicorn (uvloop, httptools, no access log) + orjson, 2 workers."""

from __future__ import annotations

from typing import Any

import orjson

from bench.peers import (
    ONE_THREAD,
    PANDAS,
    SKLEARN,
    Launch,
    ModelInfo,
    Peer,
    Venv,
    label_of_probabilities,
)
from bench.peers.ceiling import uvicorn_argv
from bench.workspace import Workspace


def venv(ws: Workspace) -> Venv:
    return Venv(
        "starlette",
        (SKLEARN, PANDAS, "starlette==1.10.0", "uvicorn[standard]==0.54.0", "orjson==3.13.0"),
    )


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    return Launch(
        argv=uvicorn_argv(ws, "starlette", "starlette_app:app", port),
        url=f"http://127.0.0.1:{port}/predict",
        body=orjson.dumps(model.as_record()),
        env={"BENCH_MODEL_DIR": str(model.folder), **ONE_THREAD},
    )


def answer(body: Any, model: ModelInfo) -> str:
    return label_of_probabilities(body["probabilities"], model)


PEERS = [
    Peer(
        name="starlette",
        title="hand-written Starlette + uvicorn + orjson",
        kind="hand-written",
        venv="starlette",
        launch=launch,
        answer=answer,
    )
]
