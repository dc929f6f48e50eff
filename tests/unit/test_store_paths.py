"""Paths, digests and names read from a store: refused before anything is written or loaded.

Each manifest here is written byte by byte, as a tampered or crafted store would hold it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipml.errors import IntegrityError, ModelReferenceError, StoreError
from shipml.store import Reference, Store, parse_reference
from tests.store_support import digest_of, tree, write_version

PAYLOAD = b"print('owned')\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"))


def escaping_paths(tmp_path: Path) -> list[str]:
    return [
        "../../../escaped.py",
        "a/../../../../escaped.py",
        str(tmp_path / "absolute-escape.py"),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_manifest_path_out_of_the_version_is_refused_and_nothing_is_written(
    store: Store, tmp_path: Path, index: int
) -> None:
    relpath = escaping_paths(tmp_path)[index]
    write_version(store, "m", 1, {relpath: PAYLOAD})
    with pytest.raises(IntegrityError, match="shipml only reads files inside a version's own"):
        store.fetch(parse_reference("m:1"), tmp_path / "cache")
    assert not (tmp_path / "escaped.py").exists()
    assert not (tmp_path / "absolute-escape.py").exists()
    assert {p for p in tree(tmp_path) if not p.startswith(("store", "cache"))} == set()


@pytest.mark.parametrize(
    ("relpath", "why"),
    [
        ("../x", "goes up a folder"),
        ("a/..", "goes up a folder"),
        ("/etc/passwd", "is absolute"),
        ("a//b", "not normalised"),
        ("./a", "not normalised"),
        ("a/./b", "not normalised"),
        ("a/", "not normalised"),
        ("a\\..\\..\\b", "backslash"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("", "non-empty string"),
        ("C:/windows", "drive letter"),
        ("manifest.json", "own manifest"),
        ("x" * 256, "longer than 255 bytes"),
        ("a/" * 600, "longer than 1024"),
    ],
)
def test_the_path_rule_says_why(relpath: str, why: str) -> None:
    from shipml.store.paths import check_relpath

    with pytest.raises(IntegrityError, match=why):
        check_relpath(relpath)


@pytest.mark.parametrize(
    "relpath", ["model.joblib", "code/score.py", "model/sub dir/weights.bin", ".keras", "é.txt"]
)
def test_ordinary_paths_pass(relpath: str, tmp_path: Path) -> None:
    from shipml.store.paths import inside

    assert inside(tmp_path, relpath) == tmp_path / relpath


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    from shipml.store.paths import inside

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights").symlink_to("/etc/passwd")
    with pytest.raises(IntegrityError, match="outside"):
        inside(tmp_path / "model", "weights")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model_file": "other.joblib"}, "names 'other.joblib' as its model_file"),
        ({"scoring": {"script": "code/score.py"}}, "as its scoring.script"),
        ({"environment": {"file": "env/requirements.txt"}}, "as its environment.file"),
        ({"model_file": "../../model.joblib"}, "as its model_file"),
    ],
)
def test_a_named_file_must_be_listed_with_a_digest(
    store: Store, tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    write_version(store, "m", 1, {"model.joblib": b"weights"}, **fields)
    (tmp_path / "other.joblib").write_bytes(b"never unpickled")
    for read in (lambda: store.manifest("m", 1), lambda: store.fetch(parse_reference("m:1"))):
        with pytest.raises(IntegrityError, match=message):
            read()


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ({}, "lists no files"),
        ({"model.joblib": {"digest": "sha256:../../../etc/passwd", "size": 1}}, "not 'sha256:'"),
        ({"model.joblib": {"digest": "md5:abc", "size": 1}}, "not 'sha256:'"),
        ({"model.joblib": {"digest": digest_of(b"x"), "size": -1}}, "no valid size"),
        ({"model.joblib": "sha256:abc"}, "is not an object"),
        (
            {
                "model.joblib": {"digest": digest_of(b"x"), "size": 1},
                "model.joblib/inner": {"digest": digest_of(b"x"), "size": 1},
            },
            "names both the file",
        ),
    ],
)
def test_a_damaged_file_list_is_refused(
    store: Store, listed: dict[str, object], message: str
) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"}, listed=listed)
    with pytest.raises(IntegrityError, match=message):
        store.fetch(parse_reference("m:1"))


def test_a_sample_digest_that_is_a_path_is_refused(store: Store) -> None:
    sample = {"digest": "sha256:../../../../etc/shadow", "size": 1, "rows": 1}
    write_version(store, "m", 1, {"model.joblib": b"x"}, data={"sample": sample})
    with pytest.raises(IntegrityError, match="not 'sha256:'"):
        store.manifest("m", 1)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00garbage", "is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "lists no files"),
    ],
)
def test_an_unreadable_manifest_is_one_clear_error(store: Store, raw: bytes, message: str) -> None:
    store.backend.write("models/m/versions/1/manifest.json", raw)
    with pytest.raises(IntegrityError, match=message):
        store.fetch(parse_reference("m:1"))


def test_a_manifest_moved_to_another_version_is_refused(store: Store) -> None:
    raw = write_version(store, "m", 1, {"model.joblib": b"x"})
    store.backend.write("models/m/versions/2/manifest.json", raw)
    with pytest.raises(IntegrityError, match="stored as m:2 describes m:1"):
        store.fetch(parse_reference("m:2"))


# -- names and aliases ----------------------------------------------------------------------


def outside_model(store: Store, tmp_path: Path) -> None:
    """A version that '../../outside' from the store's models/ folder would find."""
    write_version(store, "m", 1, {"model.joblib": b"x"})  # the store's models/ exists
    folder = tmp_path / "outside" / "versions" / "1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")


def test_set_alias_refuses_a_name_that_is_a_path(store: Store, tmp_path: Path) -> None:
    outside_model(store, tmp_path)
    with pytest.raises(ModelReferenceError, match="invalid model name"):
        store.set_alias("../../outside", "prod", 1)
    assert not (tmp_path / "outside" / "aliases").exists()


@pytest.mark.parametrize("name", ["../../outside", "m/../../x", "m\n", "M", ".hidden", ""])
def test_every_method_that_builds_a_path_checks_the_name(
    store: Store, tmp_path: Path, name: str
) -> None:
    outside_model(store, tmp_path)
    calls = [
        lambda: store.versions(name),
        lambda: store.aliases(name),
        lambda: store.alias(name, "prod"),
        lambda: store.manifest(name, 1),
        lambda: store.remove(name, 1),
        lambda: store.fetch(Reference(name=name, version=1), tmp_path / "cache"),
        lambda: store.resolve(Reference(name=name, alias="prod")),
    ]
    for call in calls:
        with pytest.raises(ModelReferenceError, match="invalid model name"):
            call()
    assert not (tmp_path / "outside" / "aliases").exists()


@pytest.mark.parametrize("alias", ["../../x", "prod/../../x", "prod\n", "Prod"])
def test_aliases_are_checked_too(store: Store, alias: str) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"})
    with pytest.raises(ModelReferenceError, match="invalid alias"):
        store.set_alias("m", alias, 1)
    with pytest.raises(ModelReferenceError, match="invalid alias"):
        store.resolve(Reference(name="m", alias=alias))


def test_stray_entries_in_the_store_are_not_models_or_aliases(store: Store, tmp_path: Path) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"})
    root = tmp_path / "store"
    (root / "models" / "Not A Name").mkdir()
    (root / "models" / "m" / "versions" / "01").mkdir()
    (root / "models" / "m" / "aliases").mkdir()
    (root / "models" / "m" / "aliases" / "README.txt~").write_text("x")
    assert store.models() == ["m"]
    assert store.versions("m") == [1]
    assert store.aliases("m") == {}


def test_a_damaged_alias_says_how_to_fix_it(store: Store) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"})
    store.backend.write("models/m/aliases/prod", b"garbage")
    with pytest.raises(IntegrityError, match=r"m@prod .* is damaged .*shipml models alias m"):
        store.resolve(parse_reference("m@prod"))
    store.set_alias("m", "prod", 1)
    assert store.resolve(parse_reference("m@prod")) == 1


def test_an_image_context_gets_the_checked_files_and_no_link(store: Store, tmp_path: Path) -> None:
    from shipml.store.cache import copy_folder

    write_version(store, "m", 1, {"model.joblib": b"x", "model/sub/weights.bin": b"w"})
    local = store.fetch(parse_reference("m:1"), tmp_path / "cache")
    (local.folder / "onnx").mkdir()
    (local.folder / "onnx" / "model.onnx").write_bytes(b"graph")  # what a conversion adds
    (local.folder / "passwd").symlink_to("/etc/passwd")
    copy_folder(local, tmp_path / "context")
    assert tree(tmp_path / "context") == {
        "manifest.json",
        "model.joblib",
        "model",
        "model/sub",
        "model/sub/weights.bin",
        "onnx",
        "onnx/model.onnx",
    }
    (local.folder / "model.joblib").unlink()
    (local.folder / "model.joblib").symlink_to("/etc/passwd")
    with pytest.raises(IntegrityError, match="outside"):
        copy_folder(local, tmp_path / "context-2")
    assert not (tmp_path / "context-2").exists()


def test_remove_keeps_every_blob_when_another_manifest_cannot_be_read(store: Store) -> None:
    write_version(store, "m", 1, {"model.joblib": b"shared"})
    write_version(store, "m", 2, {"model.joblib": b"shared"})
    store.backend.write("models/n/versions/1/manifest.json", b"not json")
    with pytest.raises(StoreError, match=r"not removing m:1: manifest n:1 is not JSON"):
        store.remove("m", 1)
    assert store.versions("m") == [1, 2]
    assert store.backend.exists("blobs/sha256/" + digest_of(b"shared")[7:])
