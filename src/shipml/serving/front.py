"""The HTTP front of one worker: the limits every connection is held to, and refusals.

httptools parses whatever it is given and has no limit of its own: a header that never
ends grows in memory for as long as the client sends it, and a client that sends
nothing keeps its connection (and a file descriptor) forever. The protocol
(:mod:`shipml.serving.protocol`) counts what each connection sends; this module holds
what the connections of a worker share:

- the limits (:class:`Limits`, from the serve settings; docs/security.md lists them);
- a coarse clock and one sweeper per worker that, once a second, closes connections past
  a deadline (headers not received in ``header_timeout``, a body not received in
  ``body_timeout``: 408; idle keep-alive connections after ``keepalive``). One timer per
  worker instead of one per request keeps the hot path free of timer handles;
- the cap on open connections, derived from the descriptor limit as well as the
  setting, so a flood of connections is refused early and cheaply, long before
  ``accept()`` fails for lack of descriptors (which would stop every other client);
- refusals: each is counted (``shipml_http_refused_total{reason}`` in ``/metrics``) and
  logged at most once a minute per reason, with a count of the others: a flood must
  not flood the log too.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shipml.serving.settings import ServeSettings

log = logging.getLogger("shipml")

# Descriptors a worker keeps for itself beyond its connections: the model's files, the
# metrics files, log handlers, a score.py's own files, what a library opens later.
RESERVED_DESCRIPTORS = 64
LOG_EVERY_SECONDS = 60.0

# What each refusal is counted as, and what its log line says.
REASONS = {
    "header_too_large": "431: request line and headers over {max_header_bytes} bytes",
    "too_many_headers": "431: more than {max_headers} header fields",
    "header_timeout": "408: headers not received within {header_timeout:g} s",
    "body_timeout": "408: body not received within {body_timeout:g} s",
    "bad_request": "400: not a valid HTTP/1.1 request",
    "connection_limit": "503: {max_connections} connections open in this worker, none idle",
    "evicted": "closed to make room: {max_connections} connections open in this worker",
    "descriptors": "accept() failed: out of file descriptors",
}


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = ServeSettings.max_header_bytes
    max_headers: int = ServeSettings.max_headers
    header_timeout: float = ServeSettings.header_timeout
    body_timeout: float = ServeSettings.body_timeout
    keepalive: float = ServeSettings.keepalive
    max_connections: int = ServeSettings.max_connections
    linger: float = 2.0  # seconds to read and drop what a refused client still sends

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> Limits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keepalive=settings.keepalive,
            max_connections=settings.max_connections,
        )


class Connection(Protocol):
    """What the front needs of a connection (the protocol in serving/protocol.py)."""

    phase: int
    since: float

    def expire(self, now: float) -> None: ...

    def evict(self) -> None: ...


class Front:
    """The limits, clock, sweeper and refusal counts shared by one worker's connections."""

    def __init__(
        self, limits: Limits | None = None, count: Callable[[str, int], None] | None = None
    ) -> None:
        self.limits = limits or Limits()
        self.max_connections = connection_cap(self.limits.max_connections)
        self._count = count  # adds refusals to /metrics (Metrics.refused)
        self.connections: set[Any] = set()  # bound to uvicorn's set of open connections
        self.loop: asyncio.AbstractEventLoop | None = None
        self.now = 0.0
        self.draining = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}
        self._summary_at = 0.0

    # -- the clock and the sweeper -----------------------------------------------------------

    def attach(self, connections: set[Any]) -> None:
        """Start the sweeper on the running loop, over uvicorn's set of connections."""
        if self.loop is not None:
            return
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        self._summary_at = self.now
        self._sweeper = self.loop.call_later(self._tick(), self._sweep)

    def detach(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._summarise()

    def _tick(self) -> float:
        limits = self.limits
        shortest = min(limits.header_timeout, limits.body_timeout, limits.keepalive)
        return max(0.05, min(1.0, shortest / 4))

    def _sweep(self) -> None:
        loop = self.loop
        if loop is None:  # stopped meanwhile: nothing left to sweep
            return
        self.now = now = loop.time()
        for connection in list(self.connections):
            expire = getattr(connection, "expire", None)
            if expire is not None:
                expire(now)
        if now - self._summary_at >= LOG_EVERY_SECONDS:
            self._summarise()
        self._sweeper = loop.call_later(self._tick(), self._sweep)

    # -- the connection cap ------------------------------------------------------------------

    def make_room(self, newcomer: object) -> bool:
        """Called with the cap reached: close the longest-idle or slowest connections.

        Idle keep-alive connections go first, then connections still sending their
        headers or body, oldest first; never one whose request the app is answering.
        A batch (a sixteenth of the cap) goes at once so that a flood does not cost a
        scan of every connection per new one. Returns False when nothing could go.
        """
        evictable = [
            c
            for c in self.connections
            if c is not newcomer and getattr(c, "phase", BUSY) in EVICTABLE
        ]
        if not evictable:
            return False
        count = max(1, self.max_connections // 16)
        for connection in heapq.nsmallest(count, evictable, key=_eviction_order):
            connection.evict()
        return True

    # -- refusals ----------------------------------------------------------------------------

    def refused(self, reason: str, peer: Any = None) -> None:
        """Count one refusal; log it if nothing was logged for this reason in a minute."""
        if self._count is not None:
            self._count(reason, 1)
        now = self.now
        last = self._logged_at.get(reason)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        self._logged_at[reason] = now
        limits = self.limits
        what = REASONS[reason].format(
            max_header_bytes=limits.max_header_bytes,
            max_headers=limits.max_headers,
            header_timeout=limits.header_timeout,
            body_timeout=limits.body_timeout,
            max_connections=self.max_connections,
        )
        who = f" from {peer[0]}" if isinstance(peer, tuple) and peer else ""
        log.warning(
            "refused a connection%s (%s); more of these are counted in /metrics "
            "(shipml_http_refused_total) and summed up here once a minute",
            who,
            what,
        )

    def _summarise(self) -> None:
        self._summary_at = self.now
        unlogged, self._unlogged = self._unlogged, {}
        if unlogged:
            parts = ", ".join(f"{count} {reason}" for reason, count in sorted(unlogged.items()))
            log.warning("refused %d more connections: %s", sum(unlogged.values()), parts)


# The phases of a connection (serving/protocol.py moves it through them).
HEAD = 0  # waiting for or reading a request's line and headers
BODY = 1  # reading a request's body
BUSY = 2  # the app is answering
IDLE = 3  # a keep-alive connection between requests
LINGER = 4  # refused: reading and dropping what the client still sends, then closing
EVICTABLE = (IDLE, HEAD, BODY)


def _eviction_order(connection: Connection) -> tuple[int, float]:
    return (0 if connection.phase == IDLE else 1, connection.since)


def connection_cap(wanted: int) -> int:
    """The most connections a worker may hold: the setting, or fewer if descriptors are short.

    The soft descriptor limit is raised to the hard one first when the setting needs it
    (as Go and nginx do): a soft limit of 1,024 with a hard one of a million is common
    in containers and means nothing to an attacker. What cannot be had that way lowers
    the cap, keeping descriptors for what the worker opens besides connections.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = _open_descriptors()
    needed = wanted + in_use + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - in_use - RESERVED_DESCRIPTORS))


def _open_descriptors() -> int:
    try:
        return sum(1 for _ in Path("/proc/self/fd").iterdir())
    except OSError:
        return 32


def describe(front: Front) -> Iterable[str]:
    """The limits in force, for the worker's start-up log line."""
    limits = front.limits
    yield f"{front.max_connections} connections"
    yield f"headers {limits.max_header_bytes} bytes, {limits.max_headers} fields"
    yield f"timeouts: headers {limits.header_timeout:g} s, body {limits.body_timeout:g} s"
    yield f"keep-alive {limits.keepalive:g} s"
