"""The store on real disks: modes that follow the umask, a disk that fills (a small tmpfs
mounted by the test), and a failed write that leaves nothing behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipml.errors import DiskFull
from shipml.store import Manifest, Store, parse_reference
from tests.store_support import files_in, fill, small_disk


def publish(store: Store, tmp_path: Path, data: bytes, name: str = "m") -> Manifest:
    source = tmp_path / f"source-{len(data)}-{data[:4].hex()}"
    source.write_bytes(data)
    manifest = Manifest(
        name=name, version=0, created="", contract="sklearn", files={}, model_file="model.joblib"
    )
    return store.publish(manifest, {"model.joblib": source})[0]


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(
    ("mask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_modes_follow_the_umask(
    tmp_path: Path, mask: int, file_mode: int, folder_mode: int
) -> None:
    os.umask(mask)
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path, b"weights")
    store.set_alias("m", "prod", 1)
    local = store.fetch(parse_reference("m@prod"), tmp_path / "cache")
    root = tmp_path / "s"
    files = [p for p in [*root.rglob("*"), *(tmp_path / "cache").rglob("*")] if p.is_file()]
    folders = [p for p in [*root.rglob("*"), *(tmp_path / "cache").rglob("*")] if p.is_dir()]
    assert len(files) == 5  # blob, manifest, alias, the cached file and manifest
    assert {str(p): mode(p) for p in files} == {str(p): file_mode for p in files}
    assert {str(p): mode(p) for p in folders} == {str(p): folder_mode for p in folders}
    assert mode(local.folder) == folder_mode


def test_a_full_disk_leaves_no_partial_blob(tmp_path: Path) -> None:
    with small_disk("256k") as disk:
        store = Store(str(disk / "store"))
        with pytest.raises(DiskFull, match=rf"the disk holding {disk}/store is full") as full:
            publish(store, tmp_path, os.urandom(400_000))
        assert "Free some space there" in full.value.message
        assert "SHIPML_STORE" in full.value.message
        assert files_in(disk) == []  # no .tmp-* blob, no blob, no manifest
        assert not (disk / "store" / "blobs").exists()  # nor the folders made for it
        assert store.versions("m") == []
        usage = os.statvfs(disk)
        assert usage.f_bfree == usage.f_blocks  # the disk is empty again


def test_a_full_disk_leaves_no_partial_manifest_or_alias(tmp_path: Path) -> None:
    with small_disk("256k") as disk:
        store = Store(str(disk / "store"))
        publish(store, tmp_path, b"weights")
        before = files_in(disk)
        filler = fill(disk)
        with pytest.raises(DiskFull):
            publish(store, tmp_path, b"weights")  # the blob is there: only the manifest is new
        with pytest.raises(DiskFull):
            store.set_alias("m", "prod", 1)
        assert files_in(disk) == sorted([*before, "filler"])
        assert sorted(p.name for p in (disk / "store/models/m/versions").iterdir()) == ["1"]
        assert not (disk / "store/models/m/aliases").exists()
        filler.unlink()
        assert publish(store, tmp_path, b"weights").version == 2


def test_a_full_cache_disk_leaves_no_staging_folder(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path, os.urandom(400_000))
    with small_disk("256k") as disk:
        with pytest.raises(DiskFull, match=rf"copy m:1 into the cache: the disk holding {disk}"):
            store.fetch(parse_reference("m:1"), disk)
        assert files_in(disk) == []
        assert list(disk.rglob(".tmp-*")) == []
