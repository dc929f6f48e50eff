"""What ``run()`` returns, written to the wire the way Microsoft's server writes it.

Microsoft's server wraps any return value in ``AMLResponse(value, 200, json_str=True)``:
``json.dumps`` with its defaults. So the bytes are the standard library's: ``", "`` and
``": "`` separators, non-ASCII escaped, keys in insertion order, ``NaN``/``Infinity``
written as such, floats by ``repr``, a returned string JSON-encoded once more
(``"\\"text\\""``), ``None`` answered as ``{}``. A returned response object (the script's
``AMLResponse`` or any werkzeug/Flask ``Response``) is passed through as it is: status,
headers and body.

Every answer of ``run()`` also carries Microsoft's two headers about the call:
``x-ms-run-fn-exec-ms`` (how long ``run()`` took, in milliseconds, three decimals) and
``x-ms-run-function-failed``: ``False`` on a returned value, ``True`` on a returned
response of status 500 or more, and a returned response's own otherwise (an
``AMLResponse`` sets it; a plain Flask response has none).

Where Microsoft's server fails with a 500 because ``json.dumps`` cannot write the value,
shipml writes it as JSON instead: numpy arrays and scalars (``tolist()``/``item()``), a
pandas ``DataFrame`` (a list of records), ``Series`` and ``Index`` (lists), dates and
times (ISO 8601), sets (lists). Anything else is a 500 naming the type.
"""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from shipml.errors import ModelError

JSON = "application/json"
RUN_FAILED = "x-ms-run-function-failed"
RUN_MS = "x-ms-run-fn-exec-ms"


@dataclass(slots=True)
class ScoreAnswer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Ran:
    """What one ``run()`` returned, and how long it took (Microsoft's ``x-ms-run-fn-exec-ms``)."""

    output: Any
    milliseconds: float


def _fallback(value: Any) -> Any:
    """``json.dumps``'s ``default``: only called for what it cannot write itself."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # arrays, and scalars (tolist() of a scalar is item())
    if module == "pandas":
        if hasattr(value, "to_dict") and hasattr(value, "columns"):
            return value.to_dict(orient="records")
        if hasattr(value, "tolist"):
            return value.tolist()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """``json.dumps`` as Microsoft's server calls it, plus :func:`_fallback`."""
    if value is None:
        value = {}
    try:
        return json.dumps(value, default=_fallback).encode()
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"run() returned a value that cannot be written as JSON ({exc}); return lists, "
            "dicts, strings and numbers, or an AMLResponse"
        ) from None


def answer(ran: Ran) -> ScoreAnswer:
    """The response for what ``run()`` returned, with Microsoft's headers about the call."""
    value = ran.output
    if _is_response(value):
        written = _passed_through(value)
        if written.status >= 500:
            written.headers = [(n, v) for n, v in written.headers if n.lower() != RUN_FAILED]
            written.headers.append((RUN_FAILED, "True"))
    else:
        written = ScoreAnswer(200, dumps(value), headers=[(RUN_FAILED, "False")])
    written.headers.append((RUN_MS, f"{ran.milliseconds:.3f}"))
    return written


def _is_response(value: Any) -> bool:
    wrappers = sys.modules.get("werkzeug.wrappers")  # no werkzeug imported: no response
    return wrappers is not None and isinstance(value, wrappers.Response)


def _passed_through(response: Any) -> ScoreAnswer:
    body = response.get_data()
    content_type = JSON
    headers: list[tuple[str, str]] = []
    for name, value in response.headers.items():
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value
        elif lowered != "content-length":
            headers.append((name, value))
    if "content-type" not in {name.lower() for name, _ in response.headers.items()}:
        content_type = ""
    return ScoreAnswer(int(response.status_code), body, content_type, headers)
