"""The HTTP protocol's corked writes (serving/protocol.py): one write per response, sent at
once for a lone client and at the loop's next turn under load. The limits it enforces are
attacked in tests/integration/test_http_front.py."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from shipml.serving.front import Front
from shipml.serving.protocol import CorkedHttpToolsProtocol


class Transport(asyncio.Transport):
    """Records what the protocol sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def connected(state: ServerState) -> tuple[CorkedHttpToolsProtocol, Transport]:
    config = Config(app=lambda scope, receive, send: None, http="httptools")
    config.load()
    protocol = CorkedHttpToolsProtocol.bound_to(Front())(config, state, {})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def test_a_lone_clients_response_goes_out_at_once_in_one_write() -> None:
    async def go() -> None:
        state = ServerState()
        protocol, transport = await connected(state)
        state.tasks.add(asyncio.current_task())  # type: ignore[arg-type]  # this request's
        protocol.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        protocol.transport.write(b"{}")
        assert transport.sent == []  # corked
        protocol.on_response_complete()
        assert transport.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]

    asyncio.run(go())


def test_under_load_a_response_goes_out_at_the_next_turn_still_in_one_write() -> None:
    async def go() -> None:
        state = ServerState()
        protocol, transport = await connected(state)
        other = asyncio.get_running_loop().create_future()
        state.tasks.update({asyncio.current_task(), other})  # type: ignore[arg-type]
        protocol.transport.write(b"head ")
        protocol.transport.write(b"body")
        protocol.on_response_complete()
        assert transport.sent == []  # another request is in flight: with its answer, later
        await asyncio.sleep(0)
        assert transport.sent == [b"head body"]
        other.cancel()

    asyncio.run(go())
