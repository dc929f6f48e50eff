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
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson

from shipml.errors import IntegrityError, ReferenceError_, ShipmlError, StoreError
from shipml.store.backend import Backend, open_backend
from shipml.store.manifest import FileEntry, Manifest, sha256_digest
from shipml.store.reference import LATEST, Reference, check_alias, check_name

MAX_PUBLISH_ATTEMPTS = 1000
MANIFEST = "manifest.json"


def default_store_url() -> str:
    """``$SHIPML_STORE``, else the embedded local store in ``~/.shipml/store``."""
    return os.environ.get("SHIPML_STORE") or str(Path.home() / ".shipml" / "store")


def default_cache_dir() -> Path:
    return Path(os.environ.get("SHIPML_CACHE") or Path.home() / ".cache" / "shipml" / "models")


@dataclass(frozen=True)
class LocalModel:
    """A model version whose files sit, verified, in ``folder`` on this machine."""

    folder: Path
    manifest: Manifest
    digest: str


class Store:
    """Publish, list, alias, remove and fetch model versions at one store URL."""

    def __init__(self, url: str | None = None, backend: Backend | None = None) -> None:
        self.backend = backend or open_backend(url or default_store_url())
        self.url = self.backend.url

    # -- paths ---------------------------------------------------------------------------

    @staticmethod
    def _blob(digest: str) -> str:
        return "blobs/sha256/" + digest.removeprefix("sha256:")

    @staticmethod
    def _manifest(name: str, version: int) -> str:
        return f"models/{name}/versions/{version}/{MANIFEST}"

    # -- reading -------------------------------------------------------------------------

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Turn a backend failure (network, permissions, credentials) into one clear error."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, ShipmlError):
            raise
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot {what} in store {self.url}: {reason}") from exc

    def models(self) -> list[str]:
        with self._io("list models"):
            return self.backend.listdir("models")

    def versions(self, name: str) -> list[int]:
        with self._io("list versions"):
            entries = self.backend.listdir(f"models/{name}/versions")
            numbers = sorted(int(entry) for entry in entries if entry.isdigit())
            return [n for n in numbers if self.backend.exists(self._manifest(name, n))]

    def aliases(self, name: str) -> dict[str, int]:
        found: dict[str, int] = {}
        with self._io("list aliases"):
            names = self.backend.listdir(f"models/{name}/aliases")
        for alias in names:
            try:
                data = self.backend.read(f"models/{name}/aliases/{alias}")
            except FileNotFoundError:
                continue  # removed while we listed
            found[alias] = int(orjson.loads(data)["version"])
        return found

    def resolve(self, ref: Reference) -> int:
        """The version number ``ref`` names; an error that lists what exists if none."""
        versions = self.versions(ref.name)
        if not versions:
            known = ", ".join(self.models()) or "none yet; run 'shipml train'"
            raise ReferenceError_(
                f"no model named {ref.name!r} in store {self.url} (models: {known})"
            )
        if ref.version is not None:
            if ref.version not in versions:
                raise ReferenceError_(
                    f"{ref} does not exist; versions of {ref.name}: "
                    + ", ".join(map(str, versions))
                )
            return ref.version
        if ref.alias in (None, LATEST):
            return versions[-1]
        aliases = self.aliases(ref.name)
        if ref.alias not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise ReferenceError_(
                f"{ref} does not exist; aliases of {ref.name}: {known} (set one with "
                f"'shipml models alias {ref.name} VERSION {ref.alias}')"
            )
        return aliases[ref.alias]

    def manifest(self, name: str, version: int) -> tuple[Manifest, str]:
        """The manifest of ``name:version`` and its digest."""
        data = self.manifest_bytes(name, version)
        return Manifest.from_bytes(data, f"{name}:{version}"), sha256_digest(data)

    def manifest_bytes(self, name: str, version: int) -> bytes:
        """The manifest exactly as stored: its sha256 is the model digest."""
        try:
            with self._io("read a manifest"):
                return self.backend.read(self._manifest(name, version))
        except FileNotFoundError:
            raise ReferenceError_(f"{name}:{version} does not exist in {self.url}") from None

    # -- writing -------------------------------------------------------------------------

    def publish(self, manifest: Manifest, files: Mapping[str, Path]) -> tuple[Manifest, str]:
        """Store ``files`` and publish ``manifest`` as the next version of its model.

        ``manifest.version`` and ``manifest.files`` are filled in here. Returns the
        published manifest and its digest.
        """
        check_name(manifest.name)
        entries = {relpath: self.put_blob(source.read_bytes()) for relpath, source in files.items()}
        entries = dict(sorted(entries.items()))
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        existing = self.versions(manifest.name)
        version = existing[-1] + 1 if existing else 1
        for _ in range(MAX_PUBLISH_ATTEMPTS):
            candidate = replace(manifest, version=version, files=entries, created=created)
            data = candidate.to_bytes()
            path = self._manifest(manifest.name, version)
            with self._io("publish a manifest"):
                won = self.backend.create(path, data)
            if won:
                return candidate, sha256_digest(data)
            version += 1  # somebody else took this number first
        raise StoreError(f"could not allocate a version of {manifest.name} in {self.url}")

    def put_blob(self, data: bytes) -> FileEntry:
        """Store ``data`` once under its digest (before any manifest names it)."""
        entry = FileEntry(digest=sha256_digest(data), size=len(data))
        blob = self._blob(entry.digest)
        with self._io("upload a blob"):
            if not self.backend.exists(blob):
                self.backend.create(blob, data)
        return entry

    def set_alias(self, name: str, alias: str, version: int) -> None:
        check_alias(alias)
        if alias == LATEST:
            raise ReferenceError_("'latest' always means the newest version; pick another alias")
        self.resolve(Reference(name=name, version=version))
        payload = orjson.dumps({"version": version})
        with self._io("write an alias"):
            self.backend.write(f"models/{name}/aliases/{alias}", payload)

    def remove(self, name: str, version: int) -> list[str]:
        """Delete ``name:version``, the aliases pointing at it and blobs nobody else uses.

        Returns the aliases removed with it.
        """
        manifest, _ = self.manifest(name, version)
        dropped = [alias for alias, v in self.aliases(name).items() if v == version]
        for alias in dropped:
            self.backend.delete(f"models/{name}/aliases/{alias}")
        self.backend.delete(self._manifest(name, version))
        still_used = {
            digest
            for other in self.models()
            for n in self.versions(other)
            for digest in self.manifest(other, n)[0].blob_digests()
        }
        for digest in manifest.blob_digests() - still_used:
            self.backend.delete(self._blob(digest))
        return dropped

    # -- fetching ------------------------------------------------------------------------

    def fetch(self, ref: Reference, cache_dir: Path | None = None) -> LocalModel:
        """Resolve ``ref``, bring its files into a local folder and verify every digest."""
        version = self.resolve(ref)
        raw = self.manifest_bytes(ref.name, version)
        manifest, digest = Manifest.from_bytes(raw, f"{ref.name}:{version}"), sha256_digest(raw)
        cache = (cache_dir or default_cache_dir()) / ref.name
        folder = cache / f"{version}-{digest.removeprefix('sha256:')[:16]}"
        if not folder.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=cache, prefix=".tmp-"))
            try:
                for relpath, entry in manifest.files.items():
                    target = staging / relpath
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self._read_blob(manifest, relpath, entry))
                (staging / MANIFEST).write_bytes(raw)  # so the folder stands alone (images)
                staging.rename(folder)
            except OSError:
                if not folder.is_dir():  # another worker may have won the rename
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        if not (folder / MANIFEST).is_file():  # a cache entry from before manifests were kept
            (folder / MANIFEST).write_bytes(raw)
        verify_folder(folder, manifest)
        return LocalModel(folder=folder, manifest=manifest, digest=digest)

    def read_sample(self, manifest: Manifest) -> bytes | None:
        """The training sample ``save_model`` kept with ``manifest``'s version, verified.

        It is not one of the version's files, so it is never fetched into the serving
        cache nor baked into an image: only what reads the store itself can read it.
        """
        sample = manifest.data.get("sample")
        if not isinstance(sample, dict) or not sample.get("digest"):
            return None
        entry = FileEntry(digest=str(sample["digest"]), size=int(sample.get("size", 0)))
        return self._read_blob(manifest, "the training sample", entry)

    def _read_blob(self, manifest: Manifest, relpath: str, entry: FileEntry) -> bytes:
        try:
            with self._io("read a blob"):
                data = self.backend.read(self._blob(entry.digest))
        except FileNotFoundError:
            raise IntegrityError(
                f"{relpath} of {manifest.ref} is missing from the store (blob {entry.digest})"
            ) from None
        _check(manifest, relpath, entry, data, f"blob {entry.digest}")
        return data


def open_folder(folder: Path) -> LocalModel:
    """A model baked into a folder (an image): its ``manifest.json`` beside its files.

    Verified like a store fetch, on every start: a changed file refuses to load.
    """
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"no model in {folder}: {exc}") from exc
    manifest = Manifest.from_bytes(data, str(path))
    verify_folder(folder, manifest)
    return LocalModel(folder=folder, manifest=manifest, digest=sha256_digest(data))


def verify_folder(folder: Path, manifest: Manifest) -> None:
    """Check every file of ``manifest`` in ``folder``; refuse the model on any mismatch."""
    for relpath, entry in manifest.files.items():
        path = folder / relpath
        if not path.is_file():
            raise IntegrityError(f"{relpath} of {manifest.ref} is missing from {folder}")
        _check(manifest, relpath, entry, path.read_bytes(), str(path))


def _check(manifest: Manifest, relpath: str, entry: FileEntry, data: bytes, where: str) -> None:
    actual = sha256_digest(data)
    if actual != entry.digest:
        raise IntegrityError(
            f"refusing to load {manifest.ref}: {relpath} ({where}) has digest {actual} but "
            f"the manifest records {entry.digest}. The file was changed after publishing; "
            "restore it or publish a new version."
        )
