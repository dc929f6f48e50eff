"""Every path the store builds or reads, checked in one place.

A store may be shared, copied or tampered with, so nothing read from it is trusted to
be a harmless path: a manifest's file paths, its digests and the names of models and
aliases are checked here before any of them is joined to a folder or a store key. Two
kinds of path come out of this module:

- *store keys* (``models/<name>/versions/<N>/manifest.json``, ``blobs/sha256/<hex>``),
  built only from a checked name, alias, version number or digest;
- *version paths* (``code/score.py``, ``model/weights.bin``): where a version's file
  sits inside its folder — relative, normalised, with no way out of that folder.
"""

from __future__ import annotations

import datetime
import posixpath
import re
from pathlib import Path

from shipml.errors import IntegrityError
from shipml.store.reference import check_alias, check_name

MANIFEST = "manifest.json"
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
# Longer names fail on common filesystems (255 bytes a segment) or make unusable paths.
MAX_SEGMENT_BYTES = 255
MAX_PATH_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")


# -- store keys ---------------------------------------------------------------------------


def model_key(name: str) -> str:
    return f"models/{check_name(name)}"


def versions_key(name: str) -> str:
    return f"{model_key(name)}/versions"


def version_key(name: str, version: int) -> str:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise IntegrityError(f"invalid version number {version!r}: versions count from 1")
    return f"{versions_key(name)}/{version}"


def manifest_key(name: str, version: int) -> str:
    return f"{version_key(name, version)}/{MANIFEST}"


def aliases_key(name: str) -> str:
    return f"{model_key(name)}/aliases"


def alias_key(name: str, alias: str) -> str:
    return f"{aliases_key(name)}/{check_alias(alias)}"


def blob_key(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest).removeprefix("sha256:")


# -- what a manifest says -----------------------------------------------------------------


def check_digest(digest: object, where: str = "a manifest") -> str:
    """``digest`` if it is ``sha256:`` and 64 lower-case hex digits, else an error."""
    if not isinstance(digest, str) or not DIGEST_PATTERN.fullmatch(digest):
        raise IntegrityError(
            f"{where} records the digest {digest!r}, which is not 'sha256:' and 64 hex "
            "digits; the manifest is damaged or was not written by shipml: publish the "
            "model again"
        )
    return digest


def check_relpath(relpath: object, where: str = "a manifest") -> str:
    """``relpath`` if it is a safe path inside a version folder, else an error saying why.

    Safe means: a non-empty string, relative, already normalised (no ``.``, ``..`` or empty
    segment, no trailing ``/``), with ``/`` as the only separator, no backslash, no NUL
    or other control character, no drive letter, not the folder's own ``manifest.json``,
    and short enough for any filesystem.
    """
    problem = _relpath_problem(relpath)
    if problem is None and isinstance(relpath, str):
        return relpath
    raise IntegrityError(
        f"{where} names the file {relpath!r}, which {problem}; shipml only reads files "
        "inside a version's own folder. The manifest is damaged or was crafted: do not "
        "use this version (publish the model again)"
    )


def _relpath_problem(relpath: object) -> str | None:
    if not isinstance(relpath, str) or not relpath:
        return "is not a non-empty string"
    if len(relpath) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if _CONTROL.search(relpath):
        return "contains a NUL or another control character"
    if "\\" in relpath:
        return "contains a backslash (paths use '/')"
    if relpath.startswith("/"):
        return "is absolute"
    segments = relpath.split("/")
    if ".." in segments:
        return "goes up a folder with '..'"
    if posixpath.normpath(relpath) != relpath:
        return "is not normalised (an empty or '.' segment, or a trailing '/')"
    if _DRIVE.fullmatch(segments[0]):
        return "starts with a drive letter"
    if any(len(segment.encode()) > MAX_SEGMENT_BYTES for segment in segments):
        return f"has a name longer than {MAX_SEGMENT_BYTES} bytes"
    if relpath == MANIFEST:
        return "is the version folder's own manifest"
    return None


def check_layout(relpaths: list[str], where: str) -> None:
    """No path of a version may be a folder of another (``a`` and ``a/b``): one of the two
    could not be written."""
    names = set(relpaths)
    for relpath in relpaths:
        parts = relpath.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in names:
                raise IntegrityError(
                    f"{where} names both the file {folder!r} and {relpath!r} inside it; "
                    "the manifest is damaged: publish the model again"
                )


def inside(folder: Path, relpath: str, where: str = "a manifest") -> Path:
    """``folder / relpath``, once ``relpath`` is checked and the result (symbolic links
    followed) is known to stay inside ``folder``."""
    path = folder / check_relpath(relpath, where)
    if not path.resolve().is_relative_to(folder.resolve()):
        raise IntegrityError(
            f"{relpath} of {where} leads to {path.resolve()}, outside {folder} (a symbolic "
            "link?); refusing to use it"
        )
    return path


# -- monitoring data ------------------------------------------------------------------------

MONITORING = "monitoring"
DAY_FOLDER = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
# <HHMMSS>-<worker token>-<sequence>.jsonl.gz: sorted by time within a day, unique per
# worker; anything else in a day folder (a writer's temporary file) is not a part.
PART_NAME = re.compile(r"\d{6}-[0-9a-f]{8,32}-\d{6}\.jsonl\.gz")


def monitoring_key(name: str, version: int) -> str:
    """``monitoring/<name>/<N>``: where the payload log of ``name:N`` is kept."""
    version_key(name, version)  # checks both
    return f"{MONITORING}/{name}/{version}"


def day_folder(day: str) -> str:
    """``date=YYYY-MM-DD`` for a real calendar day, else an error."""
    try:
        datetime.date.fromisoformat(day)
    except (TypeError, ValueError):
        raise IntegrityError(f"invalid monitoring day {day!r}: expected YYYY-MM-DD") from None
    if not DAY_FOLDER.fullmatch(f"date={day}"):
        raise IntegrityError(f"invalid monitoring day {day!r}: expected YYYY-MM-DD")
    return f"date={day}"


def part_key(name: str, version: int, day: str, part: str) -> str:
    """The key of one file of the payload log; ``part`` must be a part name."""
    if not PART_NAME.fullmatch(part):
        raise IntegrityError(f"invalid monitoring file name {part!r}")
    return f"{monitoring_key(name, version)}/{day_folder(day)}/{part}"
