"""One request to an Azure ML ``score.py``, in terms of HTTP alone (no server's types)."""

from __future__ import annotations

from dataclasses import dataclass

SINGLE = ("Content-Type", "Content-Length")


@dataclass(slots=True)
class ScoreCall:
    """One HTTP request to ``/score`` (or ``/predict``), free of any server's types."""

    method: str
    path: str
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    scheme: str = "http"
    server: tuple[str, int] = ("127.0.0.1", 8000)
    client: tuple[str, int] = ("127.0.0.1", 0)

    def header_dict(self) -> dict[str, str]:
        """The headers as ``dict(flask.request.headers)`` shows them behind gunicorn.

        Names are title-cased (``x-api-key`` → ``X-Api-Key``), repeated fields joined
        with commas, and names holding ``_`` dropped (gunicorn drops them: they could
        pass for another header once mapped to the WSGI environ).
        """
        found: dict[str, list[str]] = {}
        for raw_name, raw_value in self.headers:
            name = raw_name.decode("latin-1").title()
            if "_" in name:
                continue
            value = raw_value.decode("latin-1")
            if name in SINGLE:  # the WSGI environ keeps the last one
                found[name] = [value]
            else:
                found.setdefault(name, []).append(value)
        return {
            name: ",".join(values)
            for name, values in found.items()
            if name not in SINGLE or values[0]  # empty ones are not shown
        }

    def content_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == b"content-type":
                return value.decode("latin-1")
        return ""
