"""A worker process: uvicorn on uvloop + httptools, listening only once its model is ready.

gunicorn forks the workers; each builds the app (loading its model in the background),
then runs :class:`WorkerServer`, uvicorn's server with two changes (the reasons are in
:mod:`shipml.serving.listeners`):

- **listening follows readiness**: the shared socket is accepted from through a
  :class:`~shipml.serving.listeners.SharedAcceptor` that steps aside while another worker
  is ready; the worker's own ``SO_REUSEPORT`` socket opens once the model is loaded;
- **shutdown drains**: on SIGTERM the worker leaves the ready board, accepts what waits
  in its listen queues, then stops listening; it finishes every request in progress,
  answers those just accepted, closes idle connections, and logs how many requests it
  answered after the signal, within ``graceful_timeout`` (gunicorn kills it after that).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import os
import socket
import sys
import time
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.config import STARTUP_FAILURE
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from shipml.serving.front import Front, Limits, describe
from shipml.serving.listeners import ReadyBoard, SharedAcceptor, accept_queued, own_listener
from shipml.serving.protocol import CorkedHttpToolsProtocol
from shipml.serving.sizing import decided, limit_threads

log = logging.getLogger("shipml")
SHUTDOWN_MARGIN = 0.5  # seconds left to log and exit before gunicorn's kill
# A worker restarting because a run() is stuck: any code but gunicorn's boot and load
# errors (3, 4), which stop the whole server, makes gunicorn start a new worker.
RESTART_EXIT = 1
# How often a thread holding Python's lock is asked to let another run. The event loop
# answers probes and small requests while the model and large-request threads run;
# with Python's default (5 ms) each of its turns could wait that long per thread:
# /health/live under eight 100,000-row clients, p50 89 ms at 5 ms and 39 ms at 1 ms
# (docs/performance.md). Without those threads nothing competes and nothing changes.
SWITCH_INTERVAL = 0.001


def http_protocol() -> str:
    """httptools with limits and one write per response (serving/protocol.py), if installed."""
    if importlib.util.find_spec("httptools") is None:
        return "auto"
    return "shipml.serving.protocol:CorkedHttpToolsProtocol"


class Worker(UvicornWorker):  # type: ignore[misc]
    """uvicorn with uvloop + httptools and no per-request access log (PEERS.md: it halves
    throughput); requests are counted in ``/metrics`` instead."""

    CONFIG_KWARGS = {
        "loop": "auto",
        "http": http_protocol(),
        "ws": "none",  # no WebSocket routes: an upgrade request is answered as plain HTTP
        "access_log": False,
        "server_header": False,
    }
    sockets: list[Any]  # gunicorn's listeners (the master's shared socket), set before run()
    shipml_slot: int = -1  # this worker's place on the ready board (set in the master)

    async def _serve(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        settings = self.app.settings  # the gunicorn application: shipml.serving.server
        app = self.wsgi  # the ASGI app, built by gunicorn in this process
        front = Front(Limits.from_settings(settings), count=app.metrics.refused)
        if isinstance(self.config.http, str) and self.config.http.startswith("shipml."):
            self.config.http = CorkedHttpToolsProtocol.bound_to(front)
        self.config.app = app
        shared = self.sockets[0].sock if self.sockets else None
        server = WorkerServer(
            self.config,
            app=app,
            front=front,
            shared=shared,
            board=self.app.board,
            slot=self.shipml_slot,
            own_listener=settings.reuse_port and settings.workers > 1,
            grace=max(1.0, settings.graceful_timeout - SHUTDOWN_MARGIN),
        )
        self._install_sigquit_handler()
        await server.serve(sockets=[])
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        if server.restarting:
            # Drained; the stuck model thread would hold the interpreter's exit forever
            # (it joins its threads), so leave now: gunicorn starts a new worker.
            logging.shutdown()
            os._exit(RESTART_EXIT)


class AccessLogWorker(Worker):
    CONFIG_KWARGS = {**Worker.CONFIG_KWARGS, "access_log": True}


class WorkerServer(Server):
    """uvicorn's server, listening once the model is ready and draining on shutdown."""

    def __init__(
        self,
        config: Any,
        *,
        app: Any,
        front: Front,
        shared: socket.socket | None,
        board: ReadyBoard,
        slot: int,
        own_listener: bool,
        grace: float,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._front = front
        self._shared = shared
        self._board = board
        self._slot = slot
        self._own_listener = own_listener
        self._grace = grace
        self._ready = False
        self._stopping = False
        self.restarting = False  # a run() outlived WORKER_TIMEOUT (serving/deadlines.py)
        self._listening: list[tuple[Any, socket.socket]] = []  # (uvloop server, its socket)
        self._acceptor: SharedAcceptor | None = None
        self._when_ready: asyncio.Task[None] | None = None
        self._connecting: set[asyncio.Task[Any]] = set()

    # -- start -------------------------------------------------------------------------------

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.service.on_ready = self._joined  # before the lifespan starts the load
        self._app.service.on_stuck = self._restart
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        loop = asyncio.get_running_loop()
        self.servers = []
        connections = self.server_state.connections
        self._front.attach(connections)
        self._app.metrics.open_connections = connections.__len__
        if self._shared is not None:
            self._acceptor = SharedAcceptor(
                loop,
                self._shared,
                take=self._take,
                board=self._board,
                ready=self._is_ready,
                failed=self._accept_failed,
            )
            self._acceptor.start()
        self._when_ready = loop.create_task(self._listen_when_ready())
        self.started = True

    def _is_ready(self) -> bool:
        return self._ready

    def _joined(self) -> None:
        """On the ready board in the loop step that makes the service ready: from the
        first request that can see this worker ready, no loading worker takes a
        connection (listeners.py). Not once the worker is stopping."""
        if self._stopping:
            return
        # The event loop's thread runs one-row calls inline: its OpenMP pool is its own.
        limit_threads(decided(self._app.service.settings).threads)
        self._ready = True
        self._board.mark(self._slot, True)

    def _restart(self) -> None:
        """Leave the ready board, drain as at SIGTERM, then exit (gunicorn starts another)."""
        self.restarting = True
        self._board.mark(self._slot, False)
        self.should_exit = True

    def _protocol(self) -> asyncio.Protocol:
        protocol: Any = self.config.http_protocol_class
        made: asyncio.Protocol = protocol(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return made

    def _take(self, conn: socket.socket) -> None:
        """Serve a connection accepted here (the shared socket, or a queue at shutdown)."""
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        task = loop.create_task(self._connect(loop, conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(self._protocol, conn)
        except OSError:  # the client is already gone
            conn.close()

    def _accept_failed(self, exc: OSError) -> None:
        self._front.refused("descriptors")

    async def _listen_when_ready(self) -> None:
        await self._app.service.wait_ready()
        loop = asyncio.get_running_loop()
        shared = self._shared
        if shared is None:
            return
        if self._own_listener:
            sock = own_listener(shared, self.config.backlog)
        else:  # one worker: uvloop's accept loop is quicker, and no other worker to share with
            if self._acceptor is not None:
                self._acceptor.stop()
            sock = shared
        server = await loop.create_server(self._protocol, sock=sock, backlog=self.config.backlog)
        self._listening.append((server, sock))
        log.info(
            "worker %d ready and listening; limits: %s",
            os.getpid(),
            "; ".join(describe(self._front)),
        )

    # -- stop --------------------------------------------------------------------------------

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        started = time.monotonic()
        self._stopping = True
        self._board.mark(self._slot, False)
        if self._when_ready is not None:
            self._when_ready.cancel()
        state = self.server_state
        answered_before = state.total_requests
        self._front.draining = True
        queued = 0
        for server, sock in self._listening:  # take the queue, then stop listening
            waiting = accept_queued(sock)
            queued += len(waiting)
            server.close()
            for conn in waiting:
                self._take(conn)
        if self._acceptor is not None:
            queued += self._acceptor.drain()
            self._acceptor.stop()
        if self._shared is not None and all(
            sock is not self._shared for _, sock in self._listening
        ):
            with contextlib.suppress(OSError):  # (uvloop closes it when it served it)
                self._shared.close()
        await asyncio.sleep(0)  # let the accepted connections start
        for connection in list(state.connections):
            connection.shutdown()
        await asyncio.sleep(0.05)  # read what idle keep-alive clients had already sent
        for connection in list(state.connections):
            close_if_idle = getattr(connection, "close_if_idle", None)
            if close_if_idle is not None:
                close_if_idle()
        deadline = started + self._grace
        while (state.connections or state.tasks or self._connecting) and not self.force_exit:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        unfinished = len(state.tasks)
        for task in list(state.tasks):
            task.cancel(msg="the grace period (graceful_timeout) ended")
        answered = state.total_requests - answered_before
        log.info(
            "worker %d stopped: answered %d request%s after %s (%d connection%s taken "
            "from the listen queue) in %.1f s%s",
            os.getpid(),
            answered,
            "" if answered == 1 else "s",
            "its restart began" if self.restarting else "SIGTERM",
            queued,
            "" if queued == 1 else "s",
            time.monotonic() - started,
            f"; {unfinished} still running at the end of graceful_timeout were cancelled"
            if unfinished
            else "",
        )
        self._front.detach()
        if not self.force_exit:
            await self.lifespan.shutdown()


def keepalive_seconds(value: float) -> int:
    """gunicorn's keepalive is whole seconds (the front enforces the exact value)."""
    return max(1, math.ceil(value))
