"""Storage backends: the few byte-level operations the store needs, on any fsspec URL.

The store's correctness rests on two of them: ``create`` must be an *exclusive,
all-or-nothing* create (it is how version numbers are taken), and ``write`` must never
leave a half-written object visible. The local backend gets both from the filesystem
(hard link of a complete temporary file; rename); object stores get them from the
service (``If-None-Match: *`` via fsspec's ``mode="create"``; single-shot uploads).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

import fsspec

from shipml.errors import StoreError
from shipml.store.disk import STORE_HINT, explain

TEMP_PREFIX = ".tmp-"


class Backend(Protocol):
    url: str

    def read(self, path: str) -> bytes: ...
    def write(self, path: str, data: bytes) -> None: ...
    def create(self, path: str, data: bytes) -> bool: ...
    def exists(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def delete(self, path: str) -> None: ...


class LocalBackend:
    """A folder on this machine: the embedded default store, nothing to start.

    Files and folders are created with the modes the umask gives (0644 and 0755 under the
    usual 022), so a serving user other than the trainer can read a shared store; a
    write that fails (a full disk) leaves neither a temporary file nor a new folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.url = str(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise explain(exc, "create the store folder", self.root, STORE_HINT) from None

    def _path(self, path: str) -> Path:
        return self.root / path

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def _temp(self, target: Path, data: bytes) -> tuple[Path, list[Path]]:
        """A complete temporary copy of ``data`` beside ``target``, and the folders made
        for it (to remove again if the write cannot be completed)."""
        made = [folder for folder in [target.parent, *target.parent.parents] if not folder.exists()]
        temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Not tempfile.mkstemp: it makes 0600 files whatever the umask.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            _undo(temp, made)
            raise
        return temp, made

    def write(self, path: str, data: bytes) -> None:
        target = self._path(path)
        temp, made = self._temp(target, data)
        try:
            temp.replace(target)
        except BaseException:
            _undo(temp, made)
            raise

    def create(self, path: str, data: bytes) -> bool:
        target = self._path(path)
        temp, made = self._temp(target, data)
        try:
            os.link(temp, target)  # atomic and exclusive: fails if target exists
        except FileExistsError:
            return False
        except BaseException:
            _undo(temp, made)
            raise
        finally:
            temp.unlink(missing_ok=True)
        return True

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def listdir(self, path: str) -> list[str]:
        folder = self._path(path)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(TEMP_PREFIX))

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(path).unlink()


def _undo(temp: Path, made: list[Path]) -> None:
    """Remove what a failed write made: its temporary file, then its new (empty) folders."""
    temp.unlink(missing_ok=True)
    for folder in made:  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()


class FsspecBackend:
    """Any other fsspec filesystem: ``az://``, ``s3://``, ``gs://``, ``memory://``."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url.rstrip("/")
        protocol = url.split("://", 1)[0]
        azure = protocol in ("az", "abfs", "abfss")
        if azure:
            options.update(azure_options())
        self._root_ready = False
        try:
            # Other processes publish concurrently: a cached listing would be stale.
            options.setdefault("use_listings_cache", False)
            self.fs, root = fsspec.core.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            extra = protocol in ("az", "abfs")
            hint = "; install it with: pip install 'shipml[azure]'" if extra else ""
            raise StoreError(f"cannot open store {url!r}: {exc}{hint}") from exc
        self.root = str(root).rstrip("/")
        if azure:
            _retry_sooner(self.fs)

    def _path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def read(self, path: str) -> bytes:
        data: bytes = self.fs.cat_file(self._path(path))
        return data

    def _ensure_root(self) -> None:
        """Create the container or bucket on first write, as a local store makes its folder."""
        if not self._root_ready:
            top = self.root.split("/", 1)[0]
            if not self.fs.exists(top):
                try:
                    self.fs.mkdir(top)
                except (FileExistsError, ValueError):
                    # Another trainer created it first; adlfs reports that race as a
                    # ValueError ("does not meet Azure requirements"). Only a container
                    # that is really there now makes it harmless.
                    self.fs.invalidate_cache(top)
                    if not self.fs.exists(top):
                        raise
            self._root_ready = True

    def write(self, path: str, data: bytes) -> None:
        self._ensure_root()
        self.fs.pipe_file(self._path(path), data)

    def create(self, path: str, data: bytes) -> bool:
        self._ensure_root()
        try:
            self.fs.pipe_file(self._path(path), data, mode="create")
        except FileExistsError:
            return False
        return True

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._path(path)))

    def listdir(self, path: str) -> list[str]:
        try:
            entries = self.fs.ls(self._path(path), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(path))


def azure_options() -> dict[str, str]:
    """Azure settings adlfs does not read from the environment by itself.

    ``AZURE_STORAGE_CONNECTION_STRING_FILE`` names a mounted secret holding the connection
    string (Kubernetes and Docker secrets); ``AZURE_STORAGE_ACCOUNT_HOST`` is the blob
    host of a sovereign cloud (Azure Government, China). The usual variables
    (``AZURE_STORAGE_CONNECTION_STRING``, ``…_ACCOUNT_NAME`` with ``…_ACCOUNT_KEY`` or
    ``…_SAS_TOKEN``) adlfs reads itself.
    """
    options = {}
    secret = os.environ.get("AZURE_STORAGE_CONNECTION_STRING_FILE")
    if secret:
        try:
            options["connection_string"] = Path(secret).read_text().strip()
        except OSError as exc:
            raise StoreError(f"AZURE_STORAGE_CONNECTION_STRING_FILE={secret}: {exc}") from exc
    if os.environ.get("AZURE_STORAGE_ACCOUNT_HOST"):
        options["account_host"] = os.environ["AZURE_STORAGE_ACCOUNT_HOST"]
    return options


# Azure Storage's SDK waits 15, 18 then 24 s (± 3) between its three retries, a schedule made
# for a throttled account: against a wrong endpoint or a store that is down, one listing sat
# silent for ~85 s before its error, and each load attempt of a worker as long. shipml retries
# a load itself (serving/service.py); the SDK keeps its three retries, 1, 3 and 5 s (± 1) apart.
AZURE_RETRY = {"initial_backoff": 1, "increment_base": 2, "random_jitter_range": 1}


def _retry_sooner(fs: Any) -> None:
    """Set :data:`AZURE_RETRY` on adlfs's client (adlfs takes no retry policy of its own)."""
    config = getattr(getattr(fs, "service_client", None), "_config", None)
    policy = getattr(config, "retry_policy", None)
    if policy is not None and all(hasattr(policy, name) for name in AZURE_RETRY):
        for name, value in AZURE_RETRY.items():
            setattr(policy, name, value)


def open_backend(url: str) -> Backend:
    """The backend for ``url``: a plain path or ``file://`` is local, anything else fsspec."""
    if "://" not in url:
        return LocalBackend(Path(url))
    if url.startswith("file://"):
        return LocalBackend(Path(url.removeprefix("file://")))
    return FsspecBackend(url)
