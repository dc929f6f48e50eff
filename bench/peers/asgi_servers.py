"""The ceiling's constant answer on the other ASGI servers: Granian (Rust, HTTP in hyper)
and Hypercorn (pure Python, on uvloop).

Issue 16 asks that, if the HTTP layer bounds shipml's throughput, the alternatives be
measured in the benchmark before one is chosen. shipml serves on uvicorn with uvloop and
httptools (the ``ceiling`` row); these rows run the same app (apps/ceiling_app.py), two
workers, no access log, each server's fast event loop, so the only difference is the
server. ``ceiling-raw`` (peers/ceiling.py) is the third alternative: no ASGI server.
"""

from __future__ import annotations

from bench.peers import WORKERS, Launch, ModelInfo, Venv
from bench.peers.ceiling import APPS, ceiling_peer
from bench.workspace import Workspace

VENV = "asgi-servers"


def venv(ws: Workspace) -> Venv:
    return Venv(VENV, ("granian==2.8.9", "hypercorn==0.18.0", "uvloop==0.23.0"))


def launch_granian(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    """Granian's ASGI interface; its default threads per worker (also tried: one runtime
    thread, ``--runtime-mode st``, within the noise of this)."""
    argv = [
        str(ws.tool(VENV, "granian")),
        "--interface", "asgi",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(WORKERS),
        "--loop", "uvloop",
        "--no-ws",
        "--log-level", "warning",
        "--working-dir", str(APPS),
        "ceiling_app:app",
    ]  # fmt: skip
    return Launch(argv=argv, url=f"http://127.0.0.1:{port}/predict", body=b"{}", cwd=APPS)


def launch_hypercorn(ws: Workspace, model: ModelInfo, port: int) -> Launch:
    argv = [
        str(ws.tool(VENV, "hypercorn")),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
        "--worker-class", "uvloop",
        "--log-level", "warning",
        "ceiling_app:app",
    ]  # fmt: skip
    return Launch(argv=argv, url=f"http://127.0.0.1:{port}/predict", body=b"{}", cwd=APPS)


PEERS = [
    ceiling_peer(
        "ceiling-granian", "constant JSON, the same ASGI app on Granian", VENV, launch_granian
    ),
    ceiling_peer(
        "ceiling-hypercorn",
        "constant JSON, the same ASGI app on Hypercorn (uvloop)",
        VENV,
        launch_hypercorn,
    ),
]
