"""The ceiling: a constant JSON answer from a bare ASGI app on uvicorn (uvloop, httptools,
no access log), two workers. Model-independent: one run serves both tables.

``ceiling-raw`` is the same answer from an asyncio protocol on httptools with no ASGI server
(apps/raw_protocol_app.py): how much of the ceiling is uvicorn's own per-request work, the
measurement issue 16 asks for before any lower-level handler is chosen."""

from __future__ import annotations

from typing import Any

from bench.peers import WORKERS, Launch, ModelInfo, Peer, Venv
from bench.workspace import BENCH, Workspace

APPS = BENCH / "apps"


def venv(ws: Workspace) -> Venv:
    return Venv("ceiling", ("uvicorn[standard]==0.54.0",))


def uvicorn_argv(ws: Workspace, venv_name: str, app: str, port: int) -> list[str]:
    """uvicorn the fast way: uvloop, httptools, no access log, WORKERS processes."""
    return [
        str(ws.tool(venv_name, "uvicorn")),
        app,
        "--app-dir", str(APPS),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(WORKERS),
        "--loop", "uvloop",
        "--http", "httptools",
        "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip


def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    return Launch(
        argv=uvicorn_argv(ws, "ceiling", "ceiling_app:app", port),
        url=f"http://127.0.0.1:{port}/predict",
        body=b"{}",
    )


def launch_raw(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    app = str(APPS / "raw_protocol_app.py")
    argv = [str(ws.tool("ceiling", "python")), app, "--port", str(port)]
    return Launch(
        argv=[*argv, "--workers", str(WORKERS)],
        url=f"http://127.0.0.1:{port}/predict",
        body=b"{}",
    )


def answer(body: Any, model: ModelInfo) -> str:
    """The constant answer stands for any model's (it runs first whichever model that is)."""
    return model.label if body["label"] == "virginica" else str(body["label"])


def ceiling_peer(name: str, title: str, venv: str, launch: Any) -> Peer:
    """A row that serves the constant answer: one run stands for every model."""
    return Peer(
        name=name, title=title, kind="ceiling", venv=venv, launch=launch, answer=answer,
        per_model=False,
    )  # fmt: skip


PEERS = [
    ceiling_peer("ceiling", "constant JSON, bare ASGI on uvicorn (the ceiling)", "ceiling", launch),
    ceiling_peer(
        "ceiling-raw",
        "constant JSON, asyncio protocol on httptools, no ASGI server",
        "ceiling",
        launch_raw,
    ),
]
