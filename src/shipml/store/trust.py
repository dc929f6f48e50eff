"""Opt-in publisher signatures, for stores that several teams can write to.

A signature is an Ed25519 signature of a version's *model digest* (the sha256 of its
manifest, which records the sha256 of every file), kept beside the manifest at
``models/<name>/versions/<N>/signatures/<key id>``. Publishing signs when
``SHIPML_SIGNING_KEY`` names a private key; fetching (serve, predict, build) refuses a
version no trusted key signed when ``SHIPML_TRUSTED_KEYS`` names public keys. Those keys
are the allow-list of publishers. The threat model is in docs/store.md.

Ed25519 comes from ``cryptography`` (``pip install 'shipml[trust]'``; the Azure extra
brings it too), imported only when a key is configured.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from shipml.errors import StoreError, UntrustedModel
from shipml.store.paths import version_key

if TYPE_CHECKING:
    # on use: cryptography loads only when signatures are used
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNING_KEY = "SHIPML_SIGNING_KEY"
TRUSTED_KEYS = "SHIPML_TRUSTED_KEYS"
ALGORITHM = "ed25519"
# What is signed: a fixed context and the digest, so a signature means one thing only.
CONTEXT = b"shipml model digest v1\n"


def signatures_key(name: str, version: int) -> str:
    return f"{version_key(name, version)}/signatures"


def signature_key(name: str, version: int, key_id: str) -> str:
    return f"{signatures_key(name, version)}/{key_id}"


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key (its file name in ``signatures/``)."""
    # on use: cryptography loads only when signatures are used
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ALGORITHM}-{hashlib.sha256(raw).hexdigest()[:16]}"


@dataclass(frozen=True)
class Signer:
    """The private key a publisher signs with (``SHIPML_SIGNING_KEY``)."""

    private: Ed25519PrivateKey
    key_id: str

    def sign(self, digest: str) -> bytes:
        signature = self.private.sign(CONTEXT + digest.encode())
        record = {
            "algorithm": ALGORITHM,
            "key": self.key_id,
            "digest": digest,
            "signature": base64.b64encode(signature).decode(),
        }
        return orjson.dumps(record, option=orjson.OPT_INDENT_2)


@dataclass(frozen=True)
class Trusted:
    """The public keys whose signatures make a version acceptable (``SHIPML_TRUSTED_KEYS``)."""

    keys: dict[str, Ed25519PublicKey]

    def check(self, ref: str, digest: str, signatures: dict[str, bytes]) -> str:
        """The id of a trusted key that signed ``digest``; an error saying why if none did."""
        # on use: cryptography loads only when signatures are used
        from cryptography.exceptions import InvalidSignature

        bad = []
        for kid, record in signatures.items():
            public = self.keys.get(kid)
            if public is None:
                continue
            try:
                fields = orjson.loads(record)
                if fields["digest"] != digest:
                    raise ValueError("it signs another digest")
                public.verify(base64.b64decode(fields["signature"]), CONTEXT + digest.encode())
            except (InvalidSignature, ValueError, KeyError, TypeError):
                bad.append(kid)
                continue
            return kid
        trusted = ", ".join(sorted(self.keys))
        problem = (
            f"its signatures by {', '.join(bad)} do not verify"
            if bad
            else "no trusted key signed it"
        )
        raise UntrustedModel(
            f"refusing {ref} ({digest[:19]}…): {problem} ({TRUSTED_KEYS} trusts {trusted}). "
            f"Have a trusted publisher sign it (shipml models sign {ref} with {SIGNING_KEY} "
            "set), or serve a version that is signed"
        )


def signer_from_environment() -> Signer | None:
    path = os.environ.get(SIGNING_KEY)
    if not path:
        return None
    _require_cryptography()
    # on use: cryptography loads only when signatures are used
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        private = serialization.load_pem_private_key(_read(Path(path), SIGNING_KEY), None)
    except (ValueError, TypeError) as exc:
        raise StoreError(
            f"{SIGNING_KEY}={path} is not an unencrypted PEM private key: {exc}"
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise StoreError(f"{SIGNING_KEY}={path} is not an Ed25519 key; {_MAKE_KEYS}")
    return Signer(private, key_id(private.public_key()))


def trusted_from_environment() -> Trusted | None:
    """The trusted keys: PEM files (separated by ``:``) or folders of ``*.pub`` files."""
    setting = os.environ.get(TRUSTED_KEYS)
    if not setting:
        return None
    _require_cryptography()
    # on use: cryptography loads only when signatures are used
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys: dict[str, Ed25519PublicKey] = {}
    for entry in filter(None, setting.split(os.pathsep)):
        path = Path(entry)
        files = sorted(path.glob("*.pub")) if path.is_dir() else [path]
        for file in files:
            try:
                public = serialization.load_pem_public_key(_read(file, TRUSTED_KEYS))
            except ValueError as exc:
                raise StoreError(f"{TRUSTED_KEYS}: {file} is not a PEM public key: {exc}") from None
            if not isinstance(public, Ed25519PublicKey):
                raise StoreError(f"{TRUSTED_KEYS}: {file} is not an Ed25519 key; {_MAKE_KEYS}")
            keys[key_id(public)] = public
    if not keys:
        raise StoreError(f"{TRUSTED_KEYS}={setting} holds no public key (folders: *.pub files)")
    return Trusted(keys)


_MAKE_KEYS = (
    "make a key pair with: openssl genpkey -algorithm ed25519 -out signing.pem && "
    "openssl pkey -in signing.pem -pubout -out signing.pub"
)


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise StoreError(
            f"{SIGNING_KEY} and {TRUSTED_KEYS} need the cryptography package: "
            "pip install 'shipml[trust]'"
        ) from None
