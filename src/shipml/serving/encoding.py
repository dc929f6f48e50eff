"""Request bodies a client compressed (``Content-Encoding``), decoded within the body limit.

Triton's HTTP client compresses an infer request when asked to
(``request_compression_algorithm="gzip"`` or ``"deflate"``), and so can other HTTP
libraries. Without decoding, the model's input parser saw compressed bytes and answered
with a message about invalid UTF-8. Decoding is bounded: the decoded body is held to the
same ``max_body_bytes`` as any body, so a small compressed body cannot expand into
gigabytes in the worker (a "zip bomb"). Codings other than gzip and deflate get 415 with
the ones this service reads (RFC 9110 §15.5.16).

Microsoft's routes (``/score``) are left alone: under Microsoft's server a ``score.py``
gets the body as the client sent it, and so it does here.
"""

from __future__ import annotations

import zlib

from shipml.errors import InvalidJSON, PayloadTooLarge, ShipmlError

ACCEPTED = b"gzip, deflate, identity"
# zlib's window bits for each coding: gzip's header, zlib's header (what "deflate" means in
# HTTP, and what Triton's client sends), and raw deflate, which some clients send instead.
GZIP, ZLIB, RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS


class UnsupportedEncoding(ShipmlError):
    status = 415
    code = "unsupported_encoding"

    def __init__(self, coding: str) -> None:
        super().__init__(
            f"the body's Content-Encoding {coding!r} is not one this service reads; send it "
            "uncompressed, or compressed with gzip or deflate"
        )


class CorruptBody(InvalidJSON):
    """A compressed body that does not decompress: 400, as any body that cannot be read."""


def decoded(body: bytes, encoding: bytes, limit: int) -> bytes:
    """``body`` with the codings of its ``Content-Encoding`` header undone, in reverse order
    of their application; raises :class:`PayloadTooLarge` once it would exceed ``limit``."""
    codings = [c.strip().lower() for c in encoding.decode("latin-1").split(",")]
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, GZIP, limit, coding)
        elif coding == "deflate":
            body = _inflate(body, ZLIB if _has_zlib_header(body) else RAW, limit, coding)
        elif coding not in ("identity", ""):
            raise UnsupportedEncoding(coding)
    return body


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    """Decompress every member (gzip allows several, one after another), never holding more
    than ``limit + 1`` bytes of output."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise CorruptBody(f"the body is not valid {coding} ({exc}); {_RESEND}") from None
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(limit)
        parts.append(part)
        if not inflater.eof:
            raise CorruptBody(f"the {coding} body is cut short; {_RESEND}")
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if wbits != GZIP:  # one deflate stream, then bytes that are not part of it
            raise CorruptBody(f"the body is not valid {coding} (data after its end); {_RESEND}")


def _has_zlib_header(body: bytes) -> bool:
    """Whether a deflate body starts with zlib's two-byte header (RFC 1950), not raw data."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


_RESEND = "send the body uncompressed, or compressed whole with gzip or deflate"
