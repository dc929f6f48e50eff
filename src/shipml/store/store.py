"""The model store: immutable numbered versions, content-addressed blobs, movable aliases.

Layout (identical on every backend)::

    blobs/sha256/<hex>                        file contents, stored once
    models/<name>/versions/<N>/manifest.json  written last, never changed
    models/<name>/aliases/<alias>             {"version": N}

A version exists exactly when its manifest does. Blobs go up first and the manifest is
created exclusively, so concurrent publishers never share a number and a publisher
killed half-way leaves no version behind (only unreferenced blobs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson

from shipml.errors import IntegrityError, ModelReferenceError, ShipmlError, StoreError
from shipml.store.backend import Backend, LocalBackend, open_backend
from shipml.store.cache import (
    LocalModel,
    cache_folder,
    cached_copy,
    check_file,
    default_cache_dir,
    open_folder,
    verify_folder,
)
from shipml.store.disk import STORE_HINT, explain
from shipml.store.manifest import FileEntry, Manifest, sha256_digest
from shipml.store.paths import (
    MANIFEST,
    alias_key,
    aliases_key,
    blob_key,
    check_digest,
    manifest_key,
    versions_key,
)
from shipml.store.reference import ALIAS_PATTERN, LATEST, NAME_PATTERN, Reference, check_alias
from shipml.store.trust import (
    signature_key,
    signatures_key,
    signer_from_environment,
    trusted_from_environment,
)

__all__ = [
    "MANIFEST",
    "LocalModel",
    "Store",
    "default_cache_dir",
    "default_store_url",
    "open_folder",
    "verify_folder",
]
MAX_PUBLISH_ATTEMPTS = 1000
VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,17}")


def default_store_url() -> str:
    """``$SHIPML_STORE``, else the embedded local store in ``~/.shipml/store``."""
    return os.environ.get("SHIPML_STORE") or str(Path.home() / ".shipml" / "store")


class Store:
    """Publish, list, alias, remove and fetch model versions at one store URL.

    Every store key is built from a checked name, alias, version or digest
    (:mod:`shipml.store.paths`), and every manifest is checked when read, so nothing read
    from a store (or typed on a command line) can lead outside it or outside the cache.
    """

    def __init__(self, url: str | None = None, backend: Backend | None = None) -> None:
        self.backend = backend or open_backend(url or default_store_url())
        self.url = self.backend.url

    # -- reading -------------------------------------------------------------------------

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Turn a backend failure (network, permissions, credentials) into one clear error."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, ShipmlError):
            raise
        except OSError as exc:
            if not isinstance(self.backend, LocalBackend):  # remote: no uid, no disk of ours
                raise StoreError(f"cannot {what} in store {self.url}: {exc}") from exc
            raise explain(exc, what + " in the store", self.url, STORE_HINT) from None
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot {what} in store {self.url}: {reason}") from exc

    def models(self) -> list[str]:
        """The models in the store (entries that are not valid model names are not models)."""
        with self._io("list models"):
            return [m for m in self.backend.listdir("models") if NAME_PATTERN.fullmatch(m)]

    def versions(self, name: str) -> list[int]:
        key = versions_key(name)
        with self._io("list versions"):
            entries = self.backend.listdir(key)
            numbers = sorted(int(entry) for entry in entries if VERSION_PATTERN.fullmatch(entry))
            return [n for n in numbers if self.backend.exists(manifest_key(name, n))]

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of ``name`` and its version; a damaged alias file is an error."""
        with self._io("list aliases"):
            names = self.backend.listdir(aliases_key(name))
        found: dict[str, int] = {}
        for alias in names:
            if ALIAS_PATTERN.fullmatch(alias):
                version = self.alias(name, alias)
                if version is not None:  # None: removed while we listed
                    found[alias] = version
        return found

    def alias(self, name: str, alias: str) -> int | None:
        """The version ``name@alias`` points at, or None if there is no such alias."""
        key = alias_key(name, alias)
        try:
            with self._io("read an alias"):
                data = self.backend.read(key)
        except FileNotFoundError:
            return None
        try:
            version = orjson.loads(data)["version"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            version = None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise IntegrityError(
                f"the alias {name}@{alias} in {self.url} is damaged ({key} holds "
                f'{data[:40]!r}, not {{"version": N}}); set it again with \'shipml models '
                f"alias {name} VERSION {alias}'"
            )
        return version

    def resolve(self, ref: Reference) -> int:
        """The version number ``ref`` names; an error that lists what exists if none."""
        versions = self.versions(ref.name)
        if not versions:
            known = ", ".join(self.models()) or "none yet; run 'shipml train'"
            raise ModelReferenceError(
                f"no model named {ref.name!r} in store {self.url} (models: {known})"
            )
        if ref.version is not None:
            if ref.version not in versions:
                raise ModelReferenceError(
                    f"{ref} does not exist; versions of {ref.name}: "
                    + ", ".join(map(str, versions))
                )
            return ref.version
        if ref.alias in (None, LATEST):
            return versions[-1]
        version = self.alias(ref.name, check_alias(ref.alias or ""))
        if version is None:
            known = ", ".join(sorted(self.aliases(ref.name))) or "none"
            raise ModelReferenceError(
                f"{ref} does not exist; aliases of {ref.name}: {known} (set one with "
                f"'shipml models alias {ref.name} VERSION {ref.alias}')"
            )
        return version

    def manifest(self, name: str, version: int) -> tuple[Manifest, str]:
        """The manifest of ``name:version`` (checked: see :meth:`read_manifest`) and its digest."""
        return self.read_manifest(name, version, self.manifest_bytes(name, version))

    def manifest_bytes(self, name: str, version: int) -> bytes:
        """The manifest exactly as stored: its sha256 is the model digest."""
        key = manifest_key(name, version)
        try:
            with self._io("read a manifest"):
                return self.backend.read(key)
        except FileNotFoundError:
            raise ModelReferenceError(f"{name}:{version} does not exist in {self.url}") from None

    @staticmethod
    def read_manifest(name: str, version: int, data: bytes) -> tuple[Manifest, str]:
        """Parse and check a manifest read from ``name:version``'s place in the store.

        Besides the checks of :meth:`Manifest.from_bytes` (safe paths, every named file
        listed with a digest), the manifest must say it is ``name:version``: a manifest
        copied to another place (or another model) is refused.
        """
        manifest = Manifest.from_bytes(data, f"{name}:{version}")
        if (manifest.name, manifest.version) != (name, version):
            raise IntegrityError(
                f"the manifest stored as {name}:{version} describes {manifest.ref}; it was "
                "copied or moved inside the store: refusing to use it"
            )
        return manifest, sha256_digest(data)

    # -- writing -------------------------------------------------------------------------

    def publish(self, manifest: Manifest, files: Mapping[str, Path]) -> tuple[Manifest, str]:
        """Store ``files`` and publish ``manifest`` as the next version of its model.

        ``manifest.version`` and ``manifest.files`` are filled in here. Returns the
        published manifest and its digest. With ``SHIPML_SIGNING_KEY`` set, the version
        is signed right after its manifest is created.
        """
        versions_key(manifest.name)  # checks the name before anything is written
        signer = signer_from_environment()
        entries = {relpath: self.put_blob(source.read_bytes()) for relpath, source in files.items()}
        entries = dict(sorted(entries.items()))
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        existing = self.versions(manifest.name)
        version = existing[-1] + 1 if existing else 1
        for _ in range(MAX_PUBLISH_ATTEMPTS):
            candidate = replace(manifest, version=version, files=entries, created=created)
            data = candidate.to_bytes()
            Manifest.from_bytes(data, candidate.ref)  # never publish what could not be read
            with self._io("publish a manifest"):
                won = self.backend.create(manifest_key(manifest.name, version), data)
            if won:
                digest = sha256_digest(data)
                if signer is not None:
                    self._sign_new(manifest.name, version, signer.key_id, signer.sign(digest))
                return candidate, digest
            version += 1  # somebody else took this number first
        raise StoreError(f"could not allocate a version of {manifest.name} in {self.url}")

    def put_blob(self, data: bytes) -> FileEntry:
        """Store ``data`` once under its digest (before any manifest names it)."""
        entry = FileEntry(digest=sha256_digest(data), size=len(data))
        blob = blob_key(entry.digest)
        with self._io("upload a blob"):
            if not self.backend.exists(blob):
                self.backend.create(blob, data)
        return entry

    def set_alias(self, name: str, alias: str, version: int) -> None:
        key = alias_key(name, alias)
        if alias == LATEST:
            raise ModelReferenceError(
                "'latest' always means the newest version; pick another alias"
            )
        self.resolve(Reference(name=name, version=version))
        payload = orjson.dumps({"version": version})
        with self._io("write an alias"):
            self.backend.write(key, payload)

    def sign(self, name: str, version: int) -> str:
        """Sign ``name:version`` with ``SHIPML_SIGNING_KEY`` (a reviewer approving it, or a
        version published before signing was on). Returns the key id."""
        signer = signer_from_environment()
        if signer is None:
            raise StoreError("set SHIPML_SIGNING_KEY to the private key to sign with")
        _, digest = self.manifest(name, version)
        self._write_signature(name, version, signer.key_id, signer.sign(digest))
        return signer.key_id

    def signatures(self, name: str, version: int) -> list[str]:
        """The ids of the keys that signed ``name:version`` (not checked: see fetch)."""
        with self._io("list signatures"):
            return self.backend.listdir(signatures_key(name, version))

    def _write_signature(self, name: str, version: int, key_id: str, record: bytes) -> None:
        with self._io("write a signature"):
            self.backend.write(signature_key(name, version, key_id), record)

    def _sign_new(self, name: str, version: int, key_id: str, record: bytes) -> None:
        try:
            self._write_signature(name, version, key_id, record)
        except StoreError as exc:
            raise StoreError(
                f"published {name}:{version} but could not sign it ({exc.message}); once "
                f"that is fixed, sign it with: shipml models sign {name}:{version}"
            ) from None

    def remove(self, name: str, version: int) -> list[str]:
        """Delete ``name:version``, the aliases pointing at it and blobs nobody else uses.

        Returns the aliases removed with it. Every other manifest is read first: if one
        cannot be, no blob is deleted that it might use.
        """
        manifest, _ = self.manifest(name, version)
        still_used: set[str] = set()
        for other in self.models():
            for n in self.versions(other):
                if (other, n) == (name, version):
                    continue
                try:
                    still_used |= self.manifest(other, n)[0].blob_digests()
                except ShipmlError as exc:
                    raise StoreError(
                        f"not removing {name}:{version}: {exc.message}. Its blobs may be used "
                        f"by {other}:{n}; remove or repair that version first"
                    ) from None
        dropped = [alias for alias, v in self.aliases(name).items() if v == version]
        with self._io("remove a version"):
            for alias in dropped:
                self.backend.delete(alias_key(name, alias))
            for key_id in self.backend.listdir(signatures_key(name, version)):
                self.backend.delete(f"{signatures_key(name, version)}/{key_id}")
            self.backend.delete(manifest_key(name, version))
            for digest in manifest.blob_digests() - still_used:
                self.backend.delete(blob_key(digest))
        return dropped

    # -- fetching ------------------------------------------------------------------------

    def fetch(self, ref: Reference, cache_dir: Path | None = None) -> LocalModel:
        """Resolve ``ref``, bring its files into a local folder and verify every digest.

        With ``SHIPML_TRUSTED_KEYS`` set, a version no trusted key signed is refused
        before anything is written to the cache.
        """
        version = self.resolve(ref)
        raw = self.manifest_bytes(ref.name, version)
        manifest, digest = self.read_manifest(ref.name, version, raw)
        self.check_trust(manifest, digest)
        folder = cache_folder(cache_dir or default_cache_dir(), manifest, digest)

        def read(relpath: str, entry: FileEntry) -> bytes:
            return self._read_blob(manifest, relpath, entry)

        cached_copy(folder, manifest, raw, read)
        return LocalModel(folder=folder, manifest=manifest, digest=digest)

    def check_trust(self, manifest: Manifest, digest: str) -> None:
        """Refuse ``manifest`` unless a trusted key signed it (when trust checks are on)."""
        trusted = trusted_from_environment()
        if trusted is None:
            return
        signatures = {}
        for key_id in trusted.keys:
            try:
                with self._io("read a signature"):
                    signatures[key_id] = self.backend.read(
                        signature_key(manifest.name, manifest.version, key_id)
                    )
            except FileNotFoundError:
                continue
        trusted.check(manifest.ref, digest, signatures)

    def read_sample(self, manifest: Manifest) -> bytes | None:
        """The training sample ``save_model`` kept with ``manifest``'s version, verified.

        It is not one of the version's files, so it is never fetched into the serving
        cache nor baked into an image: only what reads the store itself can read it.
        """
        return self._read_kept(manifest, "sample", "the training sample")

    def read_reference(self, manifest: Manifest) -> bytes | None:
        """The monitoring reference ``save_model`` kept with the version, verified (None
        for versions saved before shipml kept one, or without training data)."""
        return self._read_kept(manifest, "reference", "the monitoring reference")

    def _read_kept(self, manifest: Manifest, key: str, what: str) -> bytes | None:
        kept = manifest.data.get(key)
        if not isinstance(kept, dict) or not kept.get("digest"):
            return None
        digest = check_digest(kept["digest"], f"manifest {manifest.ref} (data.{key})")
        entry = FileEntry(digest=digest, size=int(kept.get("size", 0)))
        return self._read_blob(manifest, what, entry)

    def _read_blob(self, manifest: Manifest, relpath: str, entry: FileEntry) -> bytes:
        key = blob_key(entry.digest)
        try:
            with self._io("read a blob"):
                data = self.backend.read(key)
        except FileNotFoundError:
            raise IntegrityError(
                f"{relpath} of {manifest.ref} is missing from the store (blob {entry.digest})"
            ) from None
        check_file(manifest, relpath, entry, data, f"blob {entry.digest}")
        return data
