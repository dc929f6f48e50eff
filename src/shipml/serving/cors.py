"""Cross-origin requests from browser pages (CORS): off unless origins are allowed.

A page served from another origin (``https://app.example.com`` calling the service at
``https://model.example.com``) can read an answer only if the service says that origin
may; before a request that is not "simple" (a JSON POST is not) the browser asks first
with an ``OPTIONS`` preflight. Settings: ``SHIPML_CORS_ORIGINS`` / ``serve: cors_origins``
(``*`` for any origin); a score.py model also honours ``AML_CORS_ORIGINS``, as
Microsoft's server does. Credentials (cookies, HTTP auth) are never allowed: the
service's own auth is a key the page sends in a header, which the preflight allows.

CORS protects the users of a browser, not the service: any other client can call the
service whatever these settings say (docs/security.md).
"""

from __future__ import annotations

import logging
import re

from shipml.serving.settings import CORS_ORIGIN

log = logging.getLogger("shipml")
MAX_AGE = b"600"  # seconds a browser may reuse a preflight's answer
EXPOSED = b"x-request-id, retry-after, inference-header-content-length"
TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header field name
VARY = (b"vary", b"Origin")


def parse_origins(value: str, source: str) -> tuple[str, ...]:
    """Comma-separated origins, as ``AML_CORS_ORIGINS`` holds them (bad ones skipped, logged)."""
    origins = []
    for item in value.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if origin != "*" and not CORS_ORIGIN.match(origin):
            log.warning("%s: %r is not an origin (scheme://host[:port]); ignored", source, origin)
            continue
        origins.append(origin)
    return tuple(origins)


class Cors:
    """Which origins may call, and the headers that tell a browser so."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(origin.lower().encode() for origin in origins if origin != "*")

    def allows(self, origin: bytes) -> bool:
        return self.any or origin.lower() in self.origins

    def answer_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """For an ordinary response: who may read it (``Vary`` so caches keep them apart)."""
        if origin is None or not self.allows(origin):
            return [VARY]
        return [
            (b"access-control-allow-origin", b"*" if self.any else origin),
            (b"access-control-expose-headers", EXPOSED),
            VARY,
        ]

    def preflight(
        self, origin: bytes, requested_headers: bytes | None, methods: tuple[str, ...]
    ) -> list[tuple[bytes, bytes]] | None:
        """The headers of a 204 answer to an ``OPTIONS`` preflight; None: not allowed."""
        if not self.allows(origin):
            return None
        headers = [
            (b"access-control-allow-origin", b"*" if self.any else origin),
            (b"access-control-allow-methods", ", ".join(methods).encode()),
            (b"access-control-max-age", MAX_AGE),
            VARY,
        ]
        asked = [name.strip() for name in (requested_headers or b"").split(b",") if name.strip()]
        if asked and all(TOKEN.match(name) for name in asked):
            headers.append((b"access-control-allow-headers", b", ".join(asked)))
        return headers
