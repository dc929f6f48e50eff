"""The process model: gunicorn supervises uvicorn workers; each loads the model after fork.

The master binds the port itself (serving/listeners.py: one clear error if it cannot,
and a queue that outlives any worker) and hands it to gunicorn, which forks the
workers (serving/worker.py), restarts one that dies, and on SIGTERM tells each to
drain within ``graceful_timeout``. The ASGI app and the model's library are imported in
the master just before the fork (serving/preload.py), once for all workers: after
``PROMETHEUS_MULTIPROC_DIR`` is set, which the Prometheus client must see when it is
first imported. The model itself is loaded in each worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer

from shipml.errors import ListenError, ProjectError
from shipml.serving.listeners import ReadyBoard, bind_shared
from shipml.serving.preload import preload
from shipml.serving.settings import ServeSettings
from shipml.serving.sizing import decided, settle
from shipml.serving.worker import keepalive_seconds
from shipml.store import LocalModel, Store, open_folder, parse_reference

SHM = "/dev/shm"  # Docker's per-container tmpfs (scratch_dir)
LOG_FORMAT = "%(asctime)s shipml[%(process)d] %(levelname)s %(message)s"


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
            from shipml.scoring import model_from_file  # in the worker: the master loads no model

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
    from shipml.serving.app import create_app  # in the worker: the master never loads it

    configure_logging()
    return create_app(settings, model_source(settings), describe(settings))


def describe(settings: ServeSettings) -> str:
    """Where the model comes from, for the log (never credentials: they are not in here)."""
    if settings.model_dir is not None and not settings.model:
        return f"the model in {settings.model_dir}"
    if settings.store:
        return f"{settings.model} from {settings.store}"
    return settings.model


BACKLOG = 2048


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn's application: the settings, the bound port and the ready board (master)."""

    def __init__(self, settings: ServeSettings, listener: socket.socket) -> None:
        self.settings = settings
        self.board = ReadyBoard()
        self._fd = listener.detach()  # gunicorn owns the descriptor from here on
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        worker = "AccessLogWorker" if s.access_log else "Worker"
        options = {
            "bind": [f"fd://{self._fd}"],
            "backlog": BACKLOG,
            "workers": s.workers,
            "worker_class": f"shipml.serving.worker.{worker}",
            "timeout": s.timeout,
            "graceful_timeout": s.graceful_timeout,
            "keepalive": keepalive_seconds(s.keepalive),
            # The master's socket is shared; the workers add their own (serving/worker.py).
            "reuse_port": False,
            "accesslog": "-" if s.access_log else None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "shipml",
            "pre_fork": self._pre_fork,
            "child_exit": self._child_exit,
            # gunicorn's control socket would write under $HOME: not on a read-only root.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return build_app(self.settings)

    def run(self) -> None:
        """gunicorn's ``BaseApplication.run``, and the second ``HaltServer`` caught."""
        arbiter = Arbiter(self)
        try:
            arbiter.run()
        except RuntimeError as exc:  # as gunicorn does: its message, not a traceback
            print(f"\nError: {exc}\n", file=sys.stderr)
            raise SystemExit(1) from None
        except HaltServer as exc:
            # Raised a second time from gunicorn's own halt() when another worker failed
            # to boot while it stopped the first (every worker loads the same model and
            # fails the same way): stop what is left and exit with the status it meant.
            arbiter.kill_workers(signal.SIGKILL)
            raise SystemExit(exc.exit_status) from None

    def _pre_fork(self, server: Any, worker: Any) -> None:
        worker.shipml_slot = self.board.claim(worker)

    def _child_exit(self, server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess  # on use: the master's only use of it

        self.board.release(getattr(worker, "shipml_slot", -1))
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def run_server(settings: ServeSettings) -> None:
    """Serve until SIGTERM/SIGINT. Blocks; raises ListenError if the port cannot be had."""
    if "prometheus_client" in sys.modules:  # would keep counting per process only
        raise RuntimeError("prometheus_client was imported before the server set it up")
    settings = settle(settings)
    configure_logging()
    logging.getLogger("shipml").info("sizing: %s", decided(settings).describe())
    reuse_port = settings.reuse_port and hasattr(socket, "SO_REUSEPORT")
    listener = bind_shared(settings.host, settings.port, BACKLOG, reuse_port)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _fork_and_run(settings, listener)
        return
    try:
        folder = scratch_dir()
        metrics = tempfile.TemporaryDirectory(prefix="shipml-metrics-", dir=folder)
    except ListenError:  # no writable folder at all
        listener.close()
        raise
    except OSError as exc:  # a full /tmp: say so, not a traceback
        listener.close()
        raise ListenError(
            f"cannot create the metrics folder in {folder}: {exc.strerror}; "
            "give the service a writable TMPDIR (an emptyDir on /tmp in Kubernetes)"
        ) from None
    with metrics as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        _fork_and_run(settings, listener)


def scratch_dir() -> str:
    """A writable temporary folder, for the metrics files and gunicorn's heartbeats.

    Under ``docker run --read-only`` (or a read-only root filesystem without a volume on
    /tmp) there is none where Python looks, but Docker mounts a writable tmpfs on /dev/shm
    in every container (tests/integration/test_image.py); gunicorn's docs advise it for
    the heartbeats anyway.
    It becomes this process's and its workers' temporary folder (``TMPDIR``).
    """
    try:
        return tempfile.gettempdir()
    except FileNotFoundError:  # none of TMPDIR, /tmp, /var/tmp, /usr/tmp, the cwd is writable
        pass
    if os.access(SHM, os.W_OK | os.X_OK):
        tempfile.tempdir = os.environ["TMPDIR"] = SHM
        logging.getLogger("shipml").info("temporary files: %s (/tmp is not writable)", SHM)
        return SHM
    raise ListenError(
        "no writable temporary folder (TMPDIR, /tmp, /var/tmp, /dev/shm): the service keeps "
        "its metrics files there. Mount one (docker run --tmpfs /tmp, an emptyDir on /tmp in "
        "Kubernetes) or set TMPDIR to a writable folder"
    )


def _fork_and_run(settings: ServeSettings, listener: socket.socket) -> None:
    """Import what every worker needs once, here (serving/preload.py), then run gunicorn."""
    preload(settings)
    _Gunicorn(settings, listener).run()
