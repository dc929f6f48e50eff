"""Optional API-key authentication: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""

from __future__ import annotations

import hmac

from shipml.errors import Unauthorized


class ApiKeys:
    """Checks a request's key against the configured ones in constant time."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = [key.encode() for key in keys]
        self.enabled = bool(self._keys)

    def check(self, authorization: bytes | None, api_key: bytes | None) -> None:
        offered = api_key
        if authorization is not None:
            scheme, _, token = authorization.partition(b" ")
            if scheme.lower() == b"bearer":
                offered = token.strip()
        if offered is None:
            raise Unauthorized(
                "this service needs an API key: send 'Authorization: Bearer KEY' "
                "or 'X-API-Key: KEY'"
            )
        # Compare against every key, without stopping early, so timing tells nothing.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(offered, key)
        if not matched:
            raise Unauthorized("the API key is not valid for this service")
