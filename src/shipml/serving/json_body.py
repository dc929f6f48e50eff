"""A request's JSON body, read as Flask reads it.

orjson takes UTF-8 only, and refuses a byte order mark. Python's ``json.loads(bytes)``,
which Flask's ``get_json()`` uses, also takes UTF-16 and UTF-32 and skips a UTF-8 byte
order mark: what Windows tools write (Notepad's "UTF-8 with BOM", PowerShell 5's
``Out-File``), and what a client sending such a file as it is (``curl --data-binary
@request.json``) gets answered by a Flask service.
shipml answers it too (tests/integration/test_json_bodies.py sends both the same bytes).
Only a body that orjson refused is looked at again, so UTF-8 bodies cost nothing more.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import orjson

from shipml.errors import InvalidJSON

_MARKS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def loads(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`InvalidJSON` (400) saying why if it is none."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        text = _decoded(body)
        if text is None:
            raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"the body is not valid JSON: {exc}") from None


def _decoded(body: bytes) -> str | None:
    """``body`` as text, when it starts with a byte order mark or is UTF-16/32 (a NUL among
    its first bytes, which UTF-8 JSON never has); else None."""
    if not body.startswith(_MARKS) and b"\x00" not in body[:4]:
        return None
    try:
        return body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        return None
