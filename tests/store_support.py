"""Helpers for the store's hardening tests: stores written byte by byte (as main wrote
them, or as an attacker would), a small real disk that fills, and a user who is not root."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipml.store import Store

# Main's manifest fields, in main's order (Manifest before hardening: nothing else added).
MAIN_FIELDS = (
    "name",
    "version",
    "created",
    "contract",
    "files",
    "model_file",
    "framework",
    "libraries",
    "scoring",
    "input_schema",
    "example",
    "metrics",
    "data",
    "source",
    "environment",
    "schema",
)
NOBODY = 65534


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_version(
    store: Store,
    name: str,
    version: int,
    files: dict[str, bytes],
    *,
    listed: dict[str, Any] | None = None,
    **fields: Any,
) -> bytes:
    """Write blobs and a manifest straight through the backend, with no check at all.

    ``files`` are stored as blobs and listed; ``listed`` replaces the manifest's ``files``
    (to list paths or digests that no honest publisher writes). Returns the manifest bytes.
    """
    entries = {}
    for relpath, data in files.items():
        digest = digest_of(data)
        store.backend.write("blobs/sha256/" + digest[7:], data)
        entries[relpath] = {"digest": digest, "size": len(data)}
    document: dict[str, Any] = {
        "name": name,
        "version": version,
        "created": "2026-11-28T08:00:00Z",
        "contract": "sklearn",
        "files": entries if listed is None else listed,
        "model_file": next(iter(files), None),
        "framework": {},
        "libraries": {},
        "scoring": {},
        "input_schema": None,
        "example": None,
        "metrics": {},
        "data": {},
        "source": {},
        "environment": {},
        "schema": 1,
    }
    document.update(fields)
    raw = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    store.backend.write(f"models/{name}/versions/{version}/manifest.json", raw)
    return raw


def tree(folder: Path) -> set[str]:
    """Every path under ``folder`` (files and folders), relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@contextlib.contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` (a tmpfs, mounted here): a disk that fills.

    Mounting needs root (the test and CI machines run as root); elsewhere the test is
    skipped, saying so.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the CI machine runs as root)")
    mountpoint = Path(tempfile.mkdtemp(prefix="shipml-small-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
        mountpoint.rmdir()


def fill(folder: Path) -> Path:
    """Fill the disk holding ``folder`` to the last byte; returns the filler to delete."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def as_another_user() -> list[str]:
    """A command prefix that runs as root *without* the right to ignore file permissions,
    so files owned by another user (``NOBODY``) are read as that user's modes allow."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root here (the CI machine runs as root)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--"]


def key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """An Ed25519 key pair as openssl writes it: ``NAME.pem`` (private) and ``NAME.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    secret, public = folder / f"{name}.pem", folder / f"{name}.pub"
    secret.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return secret, public
