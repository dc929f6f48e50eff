"""The local store: publish, versions, aliases, removal, verification, concurrency."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path

import pytest

from shipml.errors import IntegrityError, ModelReferenceError
from shipml.store import Manifest, Store, parse_reference


def publish(store: Store, tmp_path: Path, content: bytes = b"weights", name: str = "m") -> Manifest:
    source = tmp_path / f"model-{content.hex()[:8]}.bin"
    source.write_bytes(content)
    manifest = Manifest(
        name=name, version=0, created="", contract="sklearn", files={}, model_file="model.joblib"
    )
    published, _ = store.publish(manifest, {"model.joblib": source})
    return published


def test_versions_count_up_and_blobs_are_shared(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    assert [publish(store, tmp_path).version for _ in range(3)] == [1, 2, 3]
    assert store.versions("m") == [1, 2, 3]
    assert len(list((tmp_path / "s" / "blobs" / "sha256").iterdir())) == 1
    assert store.resolve(parse_reference("m")) == 3


def test_manifest_records_digest_and_time(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path)
    manifest, digest = store.manifest("m", 1)
    assert digest.startswith("sha256:") and len(digest) == 71
    assert manifest.files["model.joblib"].size == len(b"weights")
    assert manifest.created.endswith("Z")


def test_aliases_move_and_go_with_their_version(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path, b"one")
    publish(store, tmp_path, b"two")
    store.set_alias("m", "production", 1)
    assert store.resolve(parse_reference("m@production")) == 1
    store.set_alias("m", "production", 2)
    assert store.resolve(parse_reference("m@production")) == 2
    assert store.remove("m", 2) == ["production"]
    with pytest.raises(ModelReferenceError, match="aliases of m: none"):
        store.resolve(parse_reference("m@production"))


def test_alias_errors(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path)
    with pytest.raises(ModelReferenceError, match="versions of m: 1"):
        store.set_alias("m", "production", 5)
    with pytest.raises(ModelReferenceError, match="'latest' always means"):
        store.set_alias("m", "latest", 1)
    with pytest.raises(ModelReferenceError, match="no model named 'x'"):
        store.resolve(parse_reference("x"))


def test_remove_frees_only_unshared_blobs(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path, b"shared")
    publish(store, tmp_path, b"shared")
    publish(store, tmp_path, b"own")
    blobs = tmp_path / "s" / "blobs" / "sha256"
    store.remove("m", 3)
    assert len(list(blobs.iterdir())) == 1
    store.remove("m", 1)
    assert len(list(blobs.iterdir())) == 1  # version 2 still uses it
    assert store.versions("m") == [2]


def test_fetch_verifies_and_refuses_a_tampered_blob(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    published = publish(store, tmp_path)
    local = store.fetch(parse_reference("m:1"), tmp_path / "cache")
    assert (local.folder / "model.joblib").read_bytes() == b"weights"
    blob = tmp_path / "s" / "blobs" / "sha256" / published.files["model.joblib"].digest[7:]
    blob.write_bytes(b"evil")
    with pytest.raises(IntegrityError, match=r"model.joblib .*blob sha256:"):
        store.fetch(parse_reference("m:1"), tmp_path / "other-cache")


def test_a_damaged_cache_copy_is_fetched_again_from_the_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path)
    local = store.fetch(parse_reference("m:1"), tmp_path / "cache")
    (local.folder / "model.joblib").write_bytes(b"changed")
    again = store.fetch(parse_reference("m:1"), tmp_path / "cache")
    assert again.folder == local.folder
    assert (again.folder / "model.joblib").read_bytes() == b"weights"
    (local.folder / "model.joblib").unlink()
    (local.folder / "manifest.json").write_bytes(b"{}")
    assert (
        store.fetch(parse_reference("m:1"), tmp_path / "cache").folder / "model.joblib"
    ).is_file()
    assert [p.name for p in (tmp_path / "cache" / "m").iterdir() if p.is_dir()] == [
        local.folder.name
    ]


def test_a_damaged_cache_and_store_copy_is_refused_with_both_digests(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    published = publish(store, tmp_path)
    expected = published.files["model.joblib"].digest
    local = store.fetch(parse_reference("m:1"), tmp_path / "cache")
    (local.folder / "model.joblib").write_bytes(b"changed")
    (tmp_path / "s" / "blobs" / "sha256" / expected[7:]).write_bytes(b"evil")
    with pytest.raises(IntegrityError) as refused:
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    found = "sha256:" + hashlib.sha256(b"evil").hexdigest()
    assert expected in refused.value.message and found in refused.value.message
    assert not local.folder.exists()  # the damaged copy is not kept either


def test_an_abandoned_version_folder_is_not_a_version(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    publish(store, tmp_path)
    (tmp_path / "s" / "models" / "m" / "versions" / "2").mkdir()  # killed before its manifest
    assert store.versions("m") == [1]
    assert publish(store, tmp_path, b"next").version == 2


def _publish_in_process(args: tuple[str, str, int]) -> list[int]:
    root, scratch, count = args
    store = Store(root)
    return [publish(store, Path(scratch), f"{scratch}-{i}".encode()).version for i in range(count)]


def test_concurrent_publishers_never_share_a_version(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    jobs = []
    for i in range(4):
        scratch = tmp_path / f"w{i}"
        scratch.mkdir()
        jobs.append((root, str(scratch), 10))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_publish_in_process, jobs)
    numbers = sorted(n for chunk in results for n in chunk)
    assert numbers == list(range(1, 41))
    assert Store(root).versions("m") == list(range(1, 41))
