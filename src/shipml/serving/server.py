"""The process model: gunicorn supervises uvicorn workers; each loads the model after fork.

gunicorn restarts a worker that dies and drains on SIGTERM (stop accepting, finish
in-flight requests within ``graceful_timeout``, exit); uvicorn with uvloop and
httptools does the HTTP. The ASGI app is imported only inside the workers: the
Prometheus client must see ``PROMETHEUS_MULTIPROC_DIR`` before it is first imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from shipml.errors import ProjectError
from shipml.serving.settings import ServeSettings
from shipml.store import LocalModel, Store, open_folder, parse_reference

LOG_FORMAT = "%(asctime)s shipml[%(process)d] %(levelname)s %(message)s"


def http_protocol() -> str:
    """httptools with one write per response (serving/protocol.py), when installed."""
    if importlib.util.find_spec("httptools") is None:
        return "auto"
    return "shipml.serving.protocol:CorkedHttpToolsProtocol"


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn with uvloop + httptools and no per-request access log (PEERS.md: it halves
    throughput); requests are counted in ``/metrics`` instead."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": http_protocol(),
        "access_log": False,
        "server_header": False,
    }
    sockets: list[Any]  # gunicorn's listeners, set before run()

    def run(self) -> None:
        if self.cfg.reuse_port and self.cfg.workers > 1:
            self.sockets = [own_listener(shared, self.cfg.backlog) for shared in self.sockets]
        super().run()


def own_listener(shared: Any, backlog: int) -> socket.socket:
    """A listening socket of this worker's own, on the address of the shared one.

    With one listening socket shared by all workers, whichever worker wakes first
    accepts every connection in the queue: under a handful of keep-alive connections
    (a load balancer, a client pool, wrk) one worker can end up with all of them while
    the other idles (PEERS.md measured it; so did docs/performance.md). With one
    ``SO_REUSEPORT`` socket per worker the kernel spreads new connections over the
    workers by a hash of their addresses. The shared socket (bound by gunicorn, also
    with ``SO_REUSEPORT``) is shut down so no connection waits in a queue nobody reads.
    """
    address = shared.getsockname()
    sock = socket.socket(shared.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(backlog)
    sock.setblocking(False)
    # This stops the listen for every process holding it; the first worker does it, the
    # others get ENOTCONN.
    with contextlib.suppress(OSError):
        shared.sock.shutdown(socket.SHUT_RD)
    return sock


class AccessLogWorker(Worker):
    CONFIG_KWARGS = {**Worker.CONFIG_KWARGS, "access_log": True}


def model_source(settings: ServeSettings) -> Callable[[], LocalModel]:
    """A function that fetches and verifies the configured model (run in each worker)."""
    if settings.model_dir is not None and not settings.model:
        folder = settings.model_dir  # baked in; SHIPML_MODEL, when set, fetches from a store
        return lambda: open_folder(folder)
    if not settings.model:
        raise ProjectError(
            "no model to serve: set SHIPML_MODEL (and SHIPML_STORE) or SHIPML_MODEL_DIR"
        )
    ref = parse_reference(settings.model)
    if ref.path is not None:
        path = ref.path

        def from_file() -> LocalModel:
            from shipml.scoring import model_from_file

            return model_from_file(path)

        return from_file

    def from_store() -> LocalModel:
        return Store(settings.store).fetch(ref, settings.cache_dir)

    return from_store


def configure_logging() -> None:
    logger = logging.getLogger("shipml")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def build_app(settings: ServeSettings) -> Any:
    """Create the ASGI app in this process (a worker, or a test)."""
    from shipml.serving.app import create_app

    configure_logging()
    return create_app(settings, model_source(settings), describe(settings))


def describe(settings: ServeSettings) -> str:
    """Where the model comes from, for the log (never credentials: they are not in here)."""
    if settings.model_dir is not None and not settings.model:
        return f"the model in {settings.model_dir}"
    if settings.store:
        return f"{settings.model} from {settings.store}"
    return settings.model


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": [f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"],
            "workers": s.workers,
            "worker_class": f"{__name__}.{'AccessLogWorker' if s.access_log else 'Worker'}",
            "timeout": s.timeout,
            "graceful_timeout": s.graceful_timeout,
            "keepalive": s.keepalive,
            "reuse_port": s.reuse_port and hasattr(socket, "SO_REUSEPORT"),
            "accesslog": "-" if s.access_log else None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "shipml",
            "child_exit": _child_exit,
            # gunicorn's control socket would write under $HOME: not on a read-only root.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return build_app(self.settings)


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def run_server(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT. Blocks."""
    if "prometheus_client" in sys.modules:  # would keep counting per process only
        raise RuntimeError("prometheus_client was imported before the server set it up")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _Gunicorn(settings).run()
        return
    with tempfile.TemporaryDirectory(prefix="shipml-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        _Gunicorn(settings).run()
