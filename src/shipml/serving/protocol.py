"""uvicorn's httptools protocol, with limits on what a client may send and one write per response.

Limits (the numbers and what they cost are in :mod:`shipml.serving.front`): httptools keeps
a header that has not ended in memory, however long, so every chunk read while a
request's head is incomplete is counted, and a head larger than ``max_header_bytes``
(or with more than ``max_headers`` fields) is answered 431. The counting is one addition
per read and one per header field: nothing per byte. Each connection moves through
phases (head, body, busy, idle) stamped with the worker's coarse clock; the front's
sweeper closes those past a deadline, so no timer is created per request. A refused
client gets a JSON error, then its connection is half-closed and what it still sends is
read and dropped for a moment (a "lingering close"), so that it reads the answer
instead of a reset.

One write per response: uvicorn writes the status line and headers when the app sends
``http.response.start`` and the body on ``http.response.body``; uvloop sends each write
at once, so every response would cost two ``write`` system calls (and, on a real
network, two packets). On loopback a ``write`` costs ~15 µs, a tenth of everything a
small model's request costs (docs/performance.md). :class:`CorkedTransport` collects the
writes a connection makes during one turn of the event loop and sends them together at
the next (at once when a lone client's response is complete), the way ``TCP_CORK`` would
but without its extra system calls.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from http import HTTPStatus
from typing import Any, ClassVar, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipml.serving.front import BODY, BUSY, HEAD, IDLE, LINGER, Front

# What a refused client still sends is dropped for this long after its last byte, and at
# most this much in all: a client that reads only after sending its whole request (most
# do) then sees the answer.
LINGER_MAX_BYTES = 256 * 1024 * 1024


class CorkedTransport:
    """A transport that sends what was written during one loop turn in one call."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(data)

    def flush(self) -> None:
        """Send what was written so far (at the loop's next turn, or at once when the
        protocol knows nothing else will join it)."""
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        if not self._transport.is_closing():
            self._transport.write(buffer[0] if len(buffer) == 1 else b"".join(buffer))

    def write_eof(self) -> None:
        self.flush()
        if not self._transport.is_closing():
            self._transport.write_eof()

    def close(self) -> None:
        self.flush()  # what was written goes out before the FIN
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class Refused(Exception):
    """Raised from a parser callback to stop parsing a request that broke a limit."""


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol, held to the front's limits, writing corked."""

    front: ClassVar[Front | None] = None  # the worker's; see bound_to()

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._front = type(self).front or _default_front()
        self.phase = HEAD
        self.since = 0.0
        self._head_bytes = 0  # bytes read while a request's head was incomplete
        self._head_size = 0  # bytes of the header fields parsed so far
        self._refusal: str | None = None  # why a parser callback stopped the parser
        self._dropped = 0  # bytes read and dropped while lingering
        self.used = False  # answered a request already

    @classmethod
    def bound_to(cls, front: Front) -> type[CorkedHttpToolsProtocol]:
        """This protocol for the connections of one worker's front."""
        return type("ShipmlHttpProtocol", (cls,), {"front": front})

    # -- connection life ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        front = self._front
        if front.loop is None:
            front.attach(self.connections)
        self.corked = CorkedTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, self.corked))
        self.since = front.now
        if len(self.connections) > front.max_connections and not front.make_room(self):
            front.refused("connection_limit", self.client)
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded", OVERLOADED)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == LINGER:
            self._dropped += len(data)
            self.since = self._front.now
            if self._dropped > LINGER_MAX_BYTES:
                self.transport.close()
            return
        if phase != BODY:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades here: the request was answered as plain HTTP
        except httptools.HttpParserError:
            self._refuse(self._refusal or "bad_request")
            return
        if self._head_bytes > self._front.limits.max_header_bytes:
            self._refuse("header_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase != HEAD:  # a new request on a kept-alive connection
            self.phase = HEAD
            self.since = self._front.now
        self._head_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's own, plus the count of the head's size
        self._head_size += len(name) + len(value)
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        limits = self._front.limits
        if len(self.headers) > limits.max_headers:
            self._refusal = "too_many_headers"
            raise Refused
        if self._head_size + len(self.url) > limits.max_header_bytes:
            self._refusal = "header_too_large"
            raise Refused
        self._head_bytes = 0
        self.phase = BODY
        self.since = self._front.now
        super().on_headers_complete()
        if self._front.draining:  # the worker is stopping: this answer is the last
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        self.phase = BUSY
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive deadline kept by the sweeper instead of a timer.

        When no other request is in flight in this worker (a lone client), the response
        goes out now rather than at the loop's next turn: a turn sooner. Under load the
        answers of one turn still go out together at the next: their clients come back
        together, and their requests share model calls (docs/performance.md).
        """
        self.server_state.total_requests += 1
        self.used = True
        if self.transport.is_closing():
            return
        if len(self.server_state.tasks) <= 1:  # this request's own task only
            self.corked.flush()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.phase = IDLE
            self.since = self._front.now

    # -- deadlines, eviction, shutdown (called by the front and the server) -------------------

    def expire(self, now: float) -> None:
        """Close this connection if it is past its phase's deadline."""
        phase, waited, limits = self.phase, now - self.since, self._front.limits
        if phase == HEAD:
            if not self._head_bytes and not self.used:
                # connected but silent: no request, no answer owed (1 s when draining)
                if waited > (1.0 if self._front.draining else limits.header_timeout):
                    self.transport.close()
            elif waited > limits.header_timeout:
                self._refuse("header_timeout")
        elif phase == BODY:
            if waited > limits.body_timeout:
                self._refuse("body_timeout")
        elif phase == IDLE:
            if waited > limits.keepalive:
                self.transport.close()
        elif phase == LINGER and waited > limits.linger:
            self.transport.close()

    def evict(self) -> None:
        """Make room for a new connection: close this one (idle, or slow to send)."""
        self._front.refused("evicted", self.client)
        if self.phase != IDLE and (self._head_bytes or self.phase == BODY):
            self._disconnect_app()
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, "overloaded", OVERLOADED)
        self.transport.close()

    def shutdown(self) -> None:
        """The worker is stopping: finish the request in progress, then close.

        A connection that has sent nothing yet (accepted from the listen queue at
        shutdown, or just opened) keeps its chance to send its request; an idle
        keep-alive connection is closed by :meth:`close_if_idle`, a moment later, once
        whatever its client already sent has been read.
        """
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False

    def close_if_idle(self) -> None:
        if self.phase == IDLE and not self.transport.is_closing():
            self.transport.close()

    # -- refusals ----------------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        """Answer a client that broke a limit, then linger and close."""
        self._front.refused(reason, self.client)
        status, code, message = REFUSALS[reason]
        busy = self.cycle is not None and self.cycle.response_started
        self._disconnect_app()
        self.phase = LINGER
        self.since = self._front.now
        if busy or self.pipeline:  # an answer is being written: nothing else can be
            self.transport.close()
            return
        self._answer(status, code, message.format(limits=self._front.limits))
        self.flow.resume_reading()
        self.transport.write_eof()

    def _disconnect_app(self) -> None:
        """Tell the app, if it is reading this request's body, that the client is gone."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()

    def _answer(self, status: HTTPStatus, code: str, message: str) -> None:
        request_id = _new_id()
        body = orjson.dumps({"error": {"code": code, "message": message, "request_id": request_id}})
        head = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            f"x-request-id: {request_id}",
            "connection: close",
        ]
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            head.append("retry-after: 1")
        self.transport.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)


OVERLOADED = "the service has too many open connections; retry in a moment"
REFUSALS: dict[str, tuple[HTTPStatus, str, str]] = {
    "header_too_large": (
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "the request line and headers are larger than {limits.max_header_bytes} bytes; send "
        "fewer or smaller headers (the service's limit is SHIPML_MAX_HEADER_BYTES)",
    ),
    "too_many_headers": (
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "the request has more than {limits.max_headers} header fields; send fewer (the "
        "service's limit is SHIPML_MAX_HEADERS)",
    ),
    "header_timeout": (
        HTTPStatus.REQUEST_TIMEOUT,
        "request_timeout",
        "the request's headers did not arrive within {limits.header_timeout:g} s",
    ),
    "body_timeout": (
        HTTPStatus.REQUEST_TIMEOUT,
        "request_timeout",
        "the request's body did not arrive within {limits.body_timeout:g} s of its headers",
    ),
    "bad_request": (
        HTTPStatus.BAD_REQUEST,
        "bad_request",
        "this is not a valid HTTP/1.1 request",
    ),
}

_default: Front | None = None
_ids = itertools.count()
_id_prefix = os.urandom(5).hex()


def _new_id() -> str:
    return f"{_id_prefix}f{next(_ids):05x}"


def _reseed() -> None:
    global _id_prefix, _ids  # drawn again in each forked worker
    _id_prefix, _ids = os.urandom(5).hex(), itertools.count()


os.register_at_fork(after_in_child=_reseed)


def _default_front() -> Front:
    """A front with the default limits, for a protocol used outside ``shipml serve``."""
    global _default  # noqa: PLW0603 - one per process, made on first use
    if _default is None:
        _default = Front()
    return _default
