"""The ceiling: a bare ASGI app that answers every POST with the same JSON, no model.

uvicorn ceiling_app:app --workers 2 --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

from typing import Any

BODY = (
    b'{"label":"virginica","probabilities":'
    b'{"setosa":0.0081,"versicolor":0.0202,"virginica":0.9717}}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real server must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
