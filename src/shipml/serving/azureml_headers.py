"""Microsoft's tracing headers, on the Azure ML routes (``/score``, ``/swagger.json``).

Azure ML's clients and support ask for the request ids Microsoft's server returns, so a
score.py served by shipml answers with the same ones (checked against Microsoft's
server by tests/integration/test_azureml_dropin.py):

- ``x-ms-request-id``: the client's ``x-ms-request-id`` if it sent one (the deprecated
  form), else its ``x-ms-client-request-id``, else the request's id (``x-request-id``);
- ``x-ms-client-request-id``: the client's, or its ``x-ms-request-id``; absent if neither;
- ``TraceId`` (Office services' tracing field): echoed when sent;
- ``x-ms-run-function-failed`` on every error: ``True`` when ``run()`` failed or ran out
  of time (``SCORING_TIMEOUT_MS``, ``WORKER_TIMEOUT``), ``False`` otherwise (a 4xx, a
  model still loading).

Like Microsoft's, ids longer than 100 characters are refused with 431 on these routes.
A value holding a control character is never echoed (it could not be written back as a
header); the request is answered without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shipml.errors import ModelError, ShipmlError
from shipml.scoring.azureml.answers import RUN_FAILED
from shipml.scoring.azureml.deadline import ScoringTimeout, WorkerTimeout

LIMIT = 100  # Microsoft's HEADER_LIMIT
UNWRITABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # what uvicorn refuses in a value
NOT_FAILED = (RUN_FAILED.encode(), b"False")
FAILED = (RUN_FAILED.encode(), b"True")
READ = frozenset({b"x-request-id", b"x-ms-request-id", b"x-ms-client-request-id", b"traceid"})


class RequestIdTooLong(ShipmlError):
    """A request id over Microsoft's limit, on Microsoft's routes (its 431)."""

    status = 431
    code = "request_id_too_long"


def tracing(headers: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """The tracing headers to answer with, from the request's (raises RequestIdTooLong)."""
    sent: dict[bytes, bytes] = {}
    for name, value in headers:  # a repeated header is its values joined by "," (as gunicorn)
        if name in READ:
            sent[name] = sent[name] + b"," + value if name in sent else value
    request, legacy = sent.get(b"x-request-id"), sent.get(b"x-ms-request-id")
    client, trace = sent.get(b"x-ms-client-request-id"), sent.get(b"traceid")
    if request is not None and len(request) > LIMIT:
        raise RequestIdTooLong(f"x-request-id must not exceed {LIMIT} characters")
    if (legacy is not None and len(legacy) > LIMIT) or (client is not None and len(client) > LIMIT):
        raise RequestIdTooLong(
            f"x-ms-request-id and x-ms-client-request-id must not exceed {LIMIT} characters"
        )
    legacy, client, trace = _writable(legacy), _writable(client), _writable(trace)
    answer = [(b"x-ms-request-id", legacy or client or request_id.encode())]
    if client or legacy:
        answer.append((b"x-ms-client-request-id", client or legacy or b""))
    if trace:
        answer.append((b"traceid", trace))
    return answer


def run_failed(error: Exception) -> tuple[bytes, bytes]:
    """``x-ms-run-function-failed`` for an error answer on these routes."""
    return FAILED if isinstance(error, ModelError | ScoringTimeout | WorkerTimeout) else NOT_FAILED


def _writable(value: bytes | None) -> bytes | None:
    return value if value and not UNWRITABLE.search(value) else None
