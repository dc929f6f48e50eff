"""One ``POST /predict`` through the real ASGI app, in process: the in-process benchmarks
(``bench/batching_overhead.py``, ``bench/monitoring_overhead.py``) measure the service's own
cost without the network's noise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


def predict_call(app: Any, body: bytes) -> tuple[Callable[[], Awaitable[None]], list[int]]:
    """A function that sends ``body`` to ``/predict`` once, and the statuses it collects."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json")],
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(reply: dict[str, Any]) -> None:
        if reply["type"] == "http.response.start":
            statuses.append(reply["status"])

    async def call() -> None:
        await app(scope, receive, send)

    return call, statuses
