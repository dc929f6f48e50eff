"""The manifest: everything known about one model version, in one JSON document.

The manifest is written last and never changed, so its sha256 (the *model digest*)
identifies the version's exact contents everywhere: in ``/info``, image labels and logs.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import orjson

from shipml.errors import IntegrityError

MANIFEST_SCHEMA = 1
# Libraries whose versions every process reports (``/info``'s ``runtime``); a model's
# manifest adds its own (its flavour's library and what its files refer to).
TRACKED_LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "onnxruntime", "skl2onnx")
# Scoring contracts with code of their own; a zero-code model's contract is its flavour
# (``sklearn``, ``xgboost``, …: shipml.flavours).
CONTRACTS = ("azureml", "class")


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
        """Every blob this version uses: its files and, when one was kept, its training
        sample (``data.sample``, which is stored but not fetched with the files)."""
        digests = {entry.digest for entry in self.files.values()}
        sample = self.data.get("sample")
        if isinstance(sample, dict) and sample.get("digest"):
            digests.add(str(sample["digest"]))
        return digests

    def to_bytes(self) -> bytes:
        # No key sorting: field order is already fixed by the dataclass, and sorting would
        # also reorder user data such as the input schema's properties.
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        try:
            raw = orjson.loads(data)
            raw["files"] = {path: FileEntry(**entry) for path, entry in raw["files"].items()}
            return cls(**raw)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise IntegrityError(f"manifest {where} is unreadable or incomplete: {exc}") from exc


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Python and the installed versions of the tracked libraries and of ``extra``."""
    versions = {"python": platform.python_version()}
    for name in dict.fromkeys([*TRACKED_LIBRARIES, *extra]):
        if name == "python":
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
