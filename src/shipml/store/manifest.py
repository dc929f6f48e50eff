"""The manifest: everything known about one model version, in one JSON document.

The manifest is written last and never changed, so its sha256 (the *model digest*)
identifies the version's exact contents everywhere: in ``/info``, image labels and logs.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from typing import Any

import orjson

from shipml.errors import IntegrityError
from shipml.store.paths import check_digest, check_layout, check_relpath
from shipml.store.reference import NAME_PATTERN

MANIFEST_SCHEMA = 1
# Blobs a version keeps beside its files (``data.<key>``: digest, size, rows): the ONNX
# check's training sample and the monitoring reference (shipml.monitoring.profile).
KEPT_BLOBS = ("sample", "reference")
# Libraries whose versions every process reports (``/info``'s ``runtime``); a model's
# manifest adds its own (its flavour's library and what its files refer to).
TRACKED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "onnxruntime", "skl2onnx")
# Scoring contracts with code of their own; a zero-code model's contract is its flavour
# (``sklearn``, ``xgboost``, …: shipml.flavours).
CONTRACTS = ("azureml", "class")
# Fields other code reads with ``.get``: anything but an object there is a damaged manifest.
OBJECT_FIELDS = (
    "framework",
    "libraries",
    "scoring",
    "metrics",
    "data",
    "source",
    "environment",
    "flavour",
)


@dataclass(frozen=True)
class FileEntry:
    digest: str  # "sha256:<hex>"
    size: int


@dataclass
class Manifest:
    """One model version. ``files`` maps the file's path inside the model folder to its blob."""

    name: str
    version: int
    created: str
    contract: str
    files: dict[str, FileEntry]
    model_file: str | None = None
    framework: dict[str, str] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)
    input_schema: dict[str, Any] | None = None
    example: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    # How the model object was saved: flavour name, file format, whether it takes a
    # DataFrame, the packages it needs (pinned in images, major version checked at load).
    flavour: dict[str, Any] = field(default_factory=dict)
    schema: int = MANIFEST_SCHEMA

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def blob_digests(self) -> set[str]:
        """Every blob this version uses: its files and, when kept, its training sample
        (``data.sample``) and monitoring reference (``data.reference``), which are stored
        but not fetched with the files."""
        digests = {entry.digest for entry in self.files.values()}
        for key in KEPT_BLOBS:
            kept = self.data.get(key)
            if isinstance(kept, dict) and kept.get("digest"):
                digests.add(str(kept["digest"]))
        return digests

    def to_bytes(self) -> bytes:
        # No key sorting: field order is already fixed by the dataclass, and sorting would
        # also reorder user data such as the input schema's properties.
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        """Read a manifest, refusing one whose paths, digests or names cannot be trusted.

        Every file path must be safe inside the version folder (:mod:`shipml.store.paths`)
        and every file the manifest names for loading or importing (``model_file``,
        ``scoring.script``, ``environment.file``, ``flavour.files``) must be among its
        files, with a digest: nothing is unpickled or imported unless its digest is checked.
        """
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise IntegrityError(
                f"manifest {where} is not JSON ({exc}); it is damaged: publish the model again"
            ) from None
        if not isinstance(raw, dict):
            raise IntegrityError(f"manifest {where} is not a JSON object; it is damaged")
        raw["files"] = _files(raw.get("files"), where)
        _check_fields(raw, where)
        try:
            manifest = cls(**raw)
        except TypeError as exc:
            unknown = set(raw) - {f.name for f in fields(cls)}
            if unknown:
                raise IntegrityError(
                    f"manifest {where} has keys this shipml does not know "
                    f"({', '.join(sorted(unknown))}): it was written by a newer shipml; "
                    "upgrade shipml to read it"
                ) from None
            raise IntegrityError(f"manifest {where} is incomplete: {exc}") from None
        return manifest


def _files(files: object, where: str) -> dict[str, FileEntry]:
    if not isinstance(files, dict) or not files:
        raise IntegrityError(
            f"manifest {where} lists no files: it is incomplete (a version always has its "
            "model or its scoring code); publish the model again"
        )
    entries: dict[str, FileEntry] = {}
    for relpath, entry in files.items():
        check_relpath(relpath, f"manifest {where}")
        if not isinstance(entry, dict):
            raise IntegrityError(f"manifest {where}: the entry of {relpath!r} is not an object")
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise IntegrityError(f"manifest {where}: {relpath!r} has no valid size ({size!r})")
        entries[relpath] = FileEntry(check_digest(entry.get("digest"), f"manifest {where}"), size)
    check_layout(list(entries), f"manifest {where}")
    return entries


def _check_fields(raw: dict[str, Any], where: str) -> None:
    """Types of what the rest of shipml reads, and every named file listed with a digest."""
    if not isinstance(raw.get("name"), str) or not NAME_PATTERN.fullmatch(raw["name"]):
        raise IntegrityError(f"manifest {where} has an invalid model name {raw.get('name')!r}")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise IntegrityError(f"manifest {where} has an invalid version number {version!r}")
    for key in OBJECT_FIELDS:
        if key in raw and not isinstance(raw[key], dict):
            raise IntegrityError(f"manifest {where}: {key!r} must be a JSON object")
    metrics = raw.get("metrics") or {}
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in metrics.values()):
        raise IntegrityError(f"manifest {where}: every metric must be a number")
    named = [("model_file", raw.get("model_file"))]
    named += [("scoring.script", (raw.get("scoring") or {}).get("script"))]
    named += [("environment.file", (raw.get("environment") or {}).get("file"))]
    flavour_files = (raw.get("flavour") or {}).get("files") or []
    if not isinstance(flavour_files, list):
        raise IntegrityError(f"manifest {where}: 'flavour.files' must be a list")
    named += [("flavour.files", file) for file in flavour_files]
    model_files = (raw.get("scoring") or {}).get("model_files") or []
    if not isinstance(model_files, list):
        raise IntegrityError(f"manifest {where}: 'scoring.model_files' must be a list")
    named += [("scoring.model_files", file) for file in model_files]
    for key, relpath in named:
        if relpath is not None and (not isinstance(relpath, str) or relpath not in raw["files"]):
            raise IntegrityError(
                f"manifest {where} names {relpath!r} as its {key} but does not list it among "
                "its files with a digest; shipml never loads or imports a file whose digest "
                "it cannot check. Publish the model again"
            )
    for key in KEPT_BLOBS:
        kept = (raw.get("data") or {}).get(key)
        if kept is not None:
            if not isinstance(kept, dict):
                raise IntegrityError(f"manifest {where}: 'data.{key}' must be a JSON object")
            check_digest(kept.get("digest"), f"manifest {where} (data.{key})")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Python and the installed versions of the tracked libraries and of ``extra``."""
    versions = {"python": platform.python_version()}
    for name in dict.fromkeys([*TRACKED_LIBRARIES, *extra]):
        version = installed_version(name) if name != "python" else None
        if version is not None:
            versions[name] = version
    return versions


@functools.cache
def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, None if it is not installed.

    Kept for the life of the process: each lookup scans the installed distributions
    (~5 ms), a server checks a dozen at every worker start, and the libraries a process
    has imported do not change under it. The serve master looks them up before it forks
    (serving/preload.py), so the workers start with the answers.
    """
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
