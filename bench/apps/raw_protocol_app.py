"""A lower-level ceiling: the constant JSON answer from an asyncio protocol on httptools and
uvloop, with no ASGI server in between (no scope, no task, no receive/send messages per
request) and one write per response. What an HTTP layer without uvicorn's ASGI cycle could
reach on this machine (issue 16: "measure the alternatives, a lower-level protocol handler,
in the benchmark before choosing"). Not a server: no limits, no errors beyond closing.

python raw_protocol_app.py --port 8000 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

import httptools
import uvloop
from forking import run_workers  # beside this file

BODY = (
    b'{"label":"virginica","probabilities":'
    b'{"setosa":0.0081,"versicolor":0.0202,"virginica":0.9717}}'
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class Constant(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:  # the body was read by the parser
        self.transport.write(ANSWER)
        if not self.parser.should_keep_alive():
            self.transport.close()


def serve(sock: socket.socket) -> None:
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(loop.create_server(Constant, sock=sock, backlog=2048))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.setblocking(False)
    run_workers(args.workers, lambda: serve(sock))


if __name__ == "__main__":
    main()
