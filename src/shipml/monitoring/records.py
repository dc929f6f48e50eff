"""One logged request as one line of JSON: the format of the payload log, both ways.

A line (keys in this order)::

    {"time": "2026-11-30T10:15:02.123Z", "request_id": "5f0c…", "model": "iris",
     "version": 3, "digest": "sha256:…", "latency_ms": 0.41,
     "inputs": [{"sepal_length": 5.1, …}], "outputs": [{"label": "setosa", …}]}

``inputs`` are the request's records whatever shape the request had (one record, a list,
``{"inputs": [...]}`` with records or rows in feature order, Open Inference Protocol
tensors), ``outputs`` the answers, one per record. A ``score.py`` request's body is
logged the same way when it is JSON holding records; other JSON is kept as one item
of ``inputs``; a body that is not JSON is not logged (only its size, ``body_bytes``).

Redacted fields are left out of inputs and outputs; hashed fields become
``"sha256:<hex>"`` (an HMAC with ``SHIPML_MONITOR_HASH_KEY`` when it is set, so that
a short value cannot be found again by hashing every candidate).

Building lines runs in the worker's background task, never on the request path.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shipml.errors import ShipmlError
from shipml.scoring.base import split_payload

# What record() captured for one request: kind, request id, start and end (perf_counter
# seconds), the input as the service had it, the answer.
Captured = tuple[str, str, float, float, Any, Any]
RECORDS, TABLE, BODY = "records", "table", "body"
JSON_TYPES = (b"application/json", "application/json")


@dataclass(frozen=True)
class Identity:
    name: str
    version: int
    digest: str


class Lines:
    """Turns captured requests into log lines (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        names: Sequence[str],
        redact: Sequence[str] = (),
        hashed: Sequence[str] = (),
        hash_key: bytes | None = None,
    ) -> None:
        self.identity = identity
        self.names = tuple(names)
        self.redact = frozenset(redact)
        self.hashed = frozenset(hashed) - self.redact
        self._hash_key = hash_key
        self._second = -1
        self._stamp = ""

    def timestamp(self, wall: float) -> str:
        """ISO-8601 UTC with milliseconds; the seconds part is formatted once a second."""
        second = int(wall)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self._stamp}{int((wall - second) * 1000):03d}Z"

    def build(
        self, captured: Captured, offset: float
    ) -> tuple[dict[str, Any], list[Any] | None, list[Any] | None]:
        """The line's object, and the inputs and outputs before redaction (for the live
        signals, never written); ``offset`` turns perf_counter seconds into wall time."""
        kind, request_id, started, ended, given, answer = captured
        identity = self.identity
        line: dict[str, Any] = {
            "time": self.timestamp(started + offset),
            "request_id": request_id,
            "model": identity.name,
            "version": identity.version,
            "digest": identity.digest,
            "latency_ms": int((ended - started) * 1_000_000) / 1000,
        }
        if kind == BODY:
            body, status, content_type, answer_body = given
            inputs = self.body_records(body)
            if inputs is None:
                line["body_bytes"] = len(body)
            outputs = _json_answer(answer_body, content_type)
            line["status"] = status
        else:
            inputs = self.records(given) if kind == RECORDS else self.table(given)
            outputs = answer if type(answer) is list else [answer]
        line["inputs"] = self.clean(inputs) if inputs is not None else None
        line["outputs"] = self.clean(outputs) if outputs is not None else None
        return line, inputs, outputs

    def records(self, payload: Any) -> list[Any]:
        if type(payload) is dict and "inputs" not in payload:  # one record: most requests
            return [payload]
        try:
            items, _, rows = split_payload(payload)
        except ShipmlError:
            return [payload]
        if rows:
            names = self.names
            return [dict(zip(names, row, strict=False)) for row in items]
        return list(items)

    def table(self, features: Any) -> list[dict[str, Any]]:
        names = self.names
        if isinstance(features, np.ndarray):
            rows = features.tolist()
        else:
            rows = [list(row) for row in zip(*(c.tolist() for c in features), strict=True)]
        return [dict(zip(names, row, strict=False)) for row in rows]

    def body_records(self, body: bytes) -> list[Any] | None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return self.records(payload)

    def clean(self, items: list[Any]) -> list[Any]:
        """Items with redacted fields left out and hashed fields hashed (copies)."""
        if not self.redact and not self.hashed:
            return items
        return [self._clean(item) if isinstance(item, dict) else item for item in items]

    def _clean(self, item: dict[str, Any]) -> dict[str, Any]:
        clean = {}
        for key, value in item.items():
            if key in self.redact:
                continue
            clean[key] = self.hash(value) if key in self.hashed and value is not None else value
        return clean

    def hash(self, value: Any) -> str:
        data = orjson.dumps(value)
        if self._hash_key:
            return "sha256:" + hmac.new(self._hash_key, data, hashlib.sha256).hexdigest()
        return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_answer(body: bytes, content_type: Any) -> list[Any] | None:
    if not body or (content_type and not str(content_type).startswith("application/json")):
        return None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return answer if isinstance(answer, list) else [answer]


def parse_line(line: bytes) -> dict[str, Any] | None:
    """A line read back, or None when it is not a log line (skipped by the report)."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(item, dict) or not isinstance(item.get("time"), str):
        return None
    return item
