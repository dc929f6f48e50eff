"""uvicorn's httptools protocol, with one system call per response instead of two.

uvicorn writes the status line and headers when the app sends ``http.response.start``
and the body on ``http.response.body``; uvloop sends each write at once, so every
response costs two ``write`` system calls (and, on a real network, two packets). On
loopback a ``write`` costs ~15 µs, a tenth of everything a small model's request costs
(docs/performance.md). :class:`CorkedTransport` collects the writes a connection makes
during one turn of the event loop and sends them together at the next, the way
``TCP_CORK`` would but without its extra system calls. Everything else is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CorkedTransport:
    """A transport that sends what was written during one loop turn in one call."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(data)

    def _flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        if not self._transport.is_closing():
            self._transport.write(buffer[0] if len(buffer) == 1 else b"".join(buffer))

    def close(self) -> None:
        self._flush()  # what was written goes out before the FIN
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol writing through a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = CorkedTransport(transport, asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, corked))
