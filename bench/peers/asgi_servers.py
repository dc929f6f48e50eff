"""The ceiling's constant answer on the other HTTP layers: the ASGI servers Granian (Rust,
HTTP in hyper) and Hypercorn (pure Python, on uvloop), and socketify (uWebSockets in C++,
called through cffi; not ASGI).

Issue 16 asks that, if the HTTP layer bounds shipml's throughput, the alternatives be
measured in the benchmark before one is chosen. shipml serves on uvicorn with uvloop and
httptools (the ``ceiling`` row); these rows run the same app (apps/ceiling_app.py), two
workers, no access log, each server's fast event loop, so the only difference is the
server. ``ceiling-raw`` (peers/ceiling.py) is another alternative: no ASGI server.

socketify has its own request API, so its rows run apps/socketify_app.py: the same answer
written from inside uWebSockets' request callback, and (``ceiling-socketify-deferred``) on
the event loop's next turn, which is what a batching server needs: its answers exist only
after the batch has run. socketify 0.0.31 is on PyPI as a source distribution that carries
a prebuilt ``libsocketify_linux_amd64.so``: nothing is compiled at install.
"""

from __future__ import annotations

from typing import Any

from bench.peers import WORKERS, Launch, ModelInfo, Venv
from bench.peers.ceiling import APPS, ceiling_peer
from bench.workspace import Workspace

VENV = "asgi-servers"


def venv(ws: Workspace) -> Venv:
    return Venv(
        VENV, ("granian==2.8.9", "hypercorn==0.18.0", "uvloop==0.23.0", "socketify==0.0.31")
    )


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


def socketify_launcher(*flags: str) -> Any:
    def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
        app = str(APPS / "socketify_app.py")
        argv = [str(ws.tool(VENV, "python")), app, "--port", str(port)]
        return Launch(
            argv=[*argv, "--workers", str(WORKERS), *flags],
            url=f"http://127.0.0.1:{port}/predict",
            body=b"{}",
        )

    return launch


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
    ceiling_peer(
        "ceiling-socketify",
        "constant JSON, socketify (uWebSockets), answered in its callback",
        VENV,
        socketify_launcher(),
    ),
    ceiling_peer(
        "ceiling-socketify-deferred",
        "constant JSON, socketify (uWebSockets), answered on the loop's next turn",
        VENV,
        socketify_launcher("--defer"),
    ),
]
