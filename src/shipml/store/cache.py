"""Model folders on this machine: the fetch cache, baked-in folders, and their checks.

A version fetched from a store lands in ``<cache>/<name>/<N>-<digest>/``: its files at
their (checked) paths and its ``manifest.json``, so the folder stands alone (an image
bakes it in). Every load verifies every file against the manifest. A cached copy that
no longer matches is fetched again from the store, once; if the store's copy does not
match either, the model is refused with both digests.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shipml.errors import IntegrityError
from shipml.store.disk import CACHE_HINT, explain
from shipml.store.manifest import FileEntry, Manifest, sha256_digest
from shipml.store.paths import MANIFEST, inside
from shipml.store.reference import check_name

log = logging.getLogger("shipml.store")
ReadBlob = Callable[[str, FileEntry], bytes]
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class LocalModel:
    """A model version whose files sit, verified, in ``folder`` on this machine."""

    folder: Path
    manifest: Manifest
    digest: str


def default_cache_dir() -> Path:
    return Path(os.environ.get("SHIPML_CACHE") or Path.home() / ".cache" / "shipml" / "models")


def cache_folder(cache_dir: Path, manifest: Manifest, digest: str) -> Path:
    name = check_name(manifest.name)
    return cache_dir / name / f"{manifest.version}-{digest.removeprefix('sha256:')[:16]}"


def cached_copy(folder: Path, manifest: Manifest, raw: bytes, read_blob: ReadBlob) -> None:
    """Make ``folder`` a verified copy of the version ``raw`` describes.

    ``read_blob`` reads (and checks) one file from the store. A damaged cached copy is
    removed and fetched again, once; a full disk leaves no partial copy behind.
    """
    try:
        if folder.is_dir() and _intact(folder, manifest, raw, quiet=True):
            return
        with _locked(folder):  # one process fetches; the others wait and use its copy
            if folder.is_dir():
                if _intact(folder, manifest, raw):
                    return
                _discard(folder)
            _stage(folder, manifest, raw, read_blob)
    except OSError as exc:
        where = folder.parent
        raise explain(exc, f"copy {manifest.ref} into the cache", where, CACHE_HINT) from None
    verify_folder(folder, manifest)


def _intact(folder: Path, manifest: Manifest, raw: bytes, quiet: bool = False) -> bool:
    """Whether ``folder`` holds exactly the version: its manifest and every file."""
    try:
        if (folder / MANIFEST).read_bytes() != raw:
            raise IntegrityError(f"{folder / MANIFEST} is not the store's manifest")
        verify_folder(folder, manifest)
    except (IntegrityError, OSError) as exc:
        if not quiet:
            log.warning(
                "the cached copy of %s is damaged (%s); fetching it again", manifest.ref, exc
            )
        return False
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold a lock on the model's cache folder (a lock on the folder itself, so no lock
    file is ever left behind); released when the process ends, however it ends."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            # A filesystem without locks on folders (some network mounts): staging and
            # an atomic rename still keep every copy whole; only a concurrent repair of a
            # damaged copy may then fetch twice.
        yield
    finally:
        os.close(fd)


def _discard(folder: Path) -> None:
    trash = folder.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    folder.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def _stage(folder: Path, manifest: Manifest, raw: bytes, read_blob: ReadBlob) -> None:
    staging = folder.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    try:
        staging.mkdir()  # not tempfile.mkdtemp: the umask, not 0700, decides who can read
        for relpath, entry in manifest.files.items():
            target = inside(staging, relpath, f"manifest {manifest.ref}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read_blob(relpath, entry))
        (staging / MANIFEST).write_bytes(raw)  # so the folder stands alone (images)
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():  # else another process, not holding our lock, was first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
        path = inside(folder, relpath, f"manifest {manifest.ref}")
        if not path.is_file():
            raise IntegrityError(f"{relpath} of {manifest.ref} is missing from {folder}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise explain(exc, f"read {relpath} of {manifest.ref}", folder, CACHE_HINT) from None
        check_file(manifest, relpath, entry, data, str(path))


def check_file(manifest: Manifest, relpath: str, entry: FileEntry, data: bytes, where: str) -> None:
    actual = sha256_digest(data)
    if actual != entry.digest:
        raise IntegrityError(
            f"refusing to load {manifest.ref}: {relpath} ({where}) has digest {actual} but "
            f"the manifest records {entry.digest}. The file was changed after publishing; "
            "restore it or publish a new version."
        )


def copy_folder(local: LocalModel, target: Path) -> None:
    """Copy a verified model folder (into an image's build context), never following a
    symbolic link: the manifest's files at their checked paths, then whatever else the
    folder holds (an ONNX conversion)."""
    where = f"manifest {local.manifest.ref}"
    for relpath in local.manifest.files:
        inside(local.folder, relpath, where)  # refuse a link that leads out, before copying
    shutil.copytree(local.folder, target, symlinks=True, ignore=_links)


def _links(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if Path(folder, name).is_symlink()]
