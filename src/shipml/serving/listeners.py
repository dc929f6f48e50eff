"""Listening sockets: the master's shared one, each ready worker's own, and who accepts.

The rules (docs/architecture.md, "Process model"), and why:

- **The master binds the port** (:func:`bind_shared`) before any worker starts and keeps
  it open for as long as it runs: while every worker is down or still loading (at start,
  after a crash with one worker) connections wait in its queue instead of being refused.
  Binding first also turns "port in use" or "permission denied" into one clear error
  instead of a worker crash loop; a probe bind without ``SO_REUSEPORT`` makes sure no
  other server already listens there (with it, a second ``shipml serve`` on the same
  port would silently share the port with the first).
- **A worker that is not ready accepts nothing while another worker is ready**, so no
  request reaches a worker that would answer ``503 not_ready`` while another could
  answer it. Workers publish readiness on a :class:`ReadyBoard` (shared memory the
  master made before forking; the master clears a dead worker's slot). While no worker
  is ready, a loading worker does accept, so ``/health/live`` answers and
  ``/health/ready`` says why the model is not loaded, and its answers close the
  connection so the client's next request can go to a worker that is ready by then.
- **A ready worker also listens on a socket of its own** (``SO_REUSEPORT``, with several
  workers): the kernel spreads new connections over the listening sockets by a hash of
  their addresses, so a few long-lived connections do not all land on one worker
  (docs/performance.md). The shared socket stays in that group; its share is accepted
  one connection per wake-up by :class:`SharedAcceptor`, so it spreads too.
- **On SIGTERM a worker first accepts whatever waits in its listen queues** and only
  then closes them: a connection the kernel accepted is a request a client is waiting
  for (serving/worker.py answers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import mmap
import socket
from collections.abc import Callable
from typing import Any

from shipml.errors import ListenError

SLOTS = 1024
READY = b"\x01"


def bind_shared(host: str, port: int, backlog: int, reuse_port: bool) -> socket.socket:
    """The service's listening socket, or a :class:`ListenError` that says what to do."""
    family, address = _resolve(host, port)
    if port:
        probe = socket.socket(family, socket.SOCK_STREAM)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise _explain(exc, host, port) from None
        finally:
            probe.close()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _explain(exc, host, port) from None
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    try:
        found = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
    except socket.gaierror as exc:
        raise ListenError(
            f"cannot listen on host {host!r}: {exc.strerror}; use an address such as "
            "127.0.0.1 (this machine only) or 0.0.0.0 (every address), or a name that resolves"
        ) from None
    family, _, _, _, address = found[0]
    return family, address


def _explain(exc: OSError, host: str, port: int) -> ListenError:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ListenError(
            f"port {port} is already in use on {host} (another shipml serve, or another "
            "server); stop it, or choose another port with --port or SHIPML_PORT"
        )
    if exc.errno == errno.EACCES:
        return ListenError(
            f"no permission to listen on {where}: ports below 1024 need root or the "
            "CAP_NET_BIND_SERVICE capability; use a port from 1024 up (e.g. --port 8000) "
            "and publish or map it to the port you want"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(
            f"{host} is not an address of this machine; listen on 127.0.0.1 (this machine "
            "only), 0.0.0.0 (every address) or one of this machine's own addresses"
        )
    return ListenError(f"cannot listen on {where}: {exc.strerror or exc}")


def own_listener(shared: socket.socket, backlog: int) -> socket.socket:
    """A listening socket of this worker's own, in the shared socket's SO_REUSEPORT group."""
    sock = socket.socket(shared.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(shared.getsockname())
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def accept_queued(sock: socket.socket) -> list[socket.socket]:
    """Every connection waiting in ``sock``'s listen queue, accepted now."""
    taken: list[socket.socket] = []
    while True:
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return taken
        except OSError:  # out of descriptors, or the socket is gone: what we have
            return taken
        taken.append(conn)


class ReadyBoard:
    """Which workers are ready, in memory the master shares with the workers it forks.

    One byte per worker slot. The master hands out slots before forking and frees a
    slot when its worker exits (a crashed worker cannot clear its own); a worker sets its
    byte when its model is loaded and clears it when it starts shutting down. Reading
    whether any worker is ready is a ``memchr`` over 1 KiB: no system call.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, SLOTS)  # anonymous and MAP_SHARED: shared after fork
        self._owners: dict[int, object] = {}

    def claim(self, owner: object) -> int:
        """A free slot for a worker about to be forked (in the master); -1 if none."""
        for slot in range(SLOTS):
            if slot not in self._owners:
                self._owners[slot] = owner
                self._memory[slot] = 0
                return slot
        return -1

    def release(self, slot: int) -> None:
        """The worker of ``slot`` exited (in the master)."""
        if slot >= 0:
            self._owners.pop(slot, None)
            self._memory[slot] = 0

    def mark(self, slot: int, ready: bool) -> None:
        if slot >= 0:
            self._memory[slot] = 1 if ready else 0

    def any_ready(self) -> bool:
        return self._memory.find(READY) != -1


class SharedAcceptor:
    """Accepts connections from the shared socket, one per wake-up, when this worker should.

    Every worker watches the shared socket and the kernel wakes them all; the first to
    call ``accept()`` gets the connection, the others find nothing. Taking one at a time
    lets the least busy worker take most (uvloop's own accept loop would take the whole
    queue at once). A worker that is not ready steps aside while another is ready, and
    looks again every 50 ms.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        *,
        take: Callable[[socket.socket], None],
        board: ReadyBoard,
        ready: Callable[[], bool],
        failed: Callable[[OSError], None],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._take = take
        self._board = board
        self._ready = ready
        self._failed = failed
        self._watching = False
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if not self._watching:
            self._watching = True
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watching:
            self._watching = False
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._sock.fileno())

    def drain(self) -> int:
        """Accept everything queued now (shutting down); returns how many."""
        taken = accept_queued(self._sock)
        for conn in taken:
            self._take(conn)
        return len(taken)

    def _accept(self) -> None:
        if not self._ready() and self._board.any_ready():
            self._pause(0.05)
            return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker was quicker
        except OSError as exc:
            self._failed(exc)
            self._pause(0.1)
            return
        self._take(conn)

    def _pause(self, seconds: float) -> None:
        self.stop()
        self._timer = self._loop.call_later(seconds, self.start)
