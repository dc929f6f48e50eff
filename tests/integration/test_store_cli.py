"""The store's hardening as a user meets it: real commands, real folders, a real small disk.

Each test reproduces an attack or a fault (a crafted manifest or name, a full disk, a
folder this user cannot read, a file that is not a model) and checks that the command
fails at once, on one line that says what to do, with nothing written where it should
not be — never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shipml.store import Store
from tests.conftest import SHIPML, run_shipml
from tests.store_support import (
    NOBODY,
    as_another_user,
    files_in,
    fill,
    key_pair,
    small_disk,
    tree,
    write_version,
)

pytestmark = pytest.mark.slow


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def shipml(
    *args: str, prefix: list[str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), SHIPML, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ),
    )


@pytest.fixture
def store() -> Store:
    return Store(os.environ["SHIPML_STORE"])


def test_an_alias_named_like_a_path_writes_nothing_outside_the_store(
    store: Store, tmp_path: Path
) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"})
    outside = tmp_path / "outside" / "versions" / "1"
    outside.mkdir(parents=True)
    (outside / "manifest.json").write_text("{}")
    result = run_shipml("models", "alias", "../../outside", "1", "prod", check=False)
    one_line_error(result, "invalid model name '../../outside'")
    assert not (tmp_path / "outside" / "aliases").exists()
    result = run_shipml("models", "alias", "m", "1", "../../../escaped", check=False)
    one_line_error(result, "invalid alias")
    assert not (tmp_path / "escaped").exists()


def test_build_refuses_a_manifest_that_leads_out_and_writes_nothing(
    store: Store, tmp_path: Path
) -> None:
    write_version(store, "m", 1, {"../../../escaped.py": b"print('owned')\n"})
    context = tmp_path / "context"
    result = run_shipml(
        "build",
        "m:1",
        "--tag",
        "shipml-store-test:1",
        "--dockerfile-only",
        str(context),
        check=False,
    )
    one_line_error(result, "names the file '../../../escaped.py', which goes up a folder")
    assert not (tmp_path / "escaped.py").exists() and not context.exists()
    assert {p for p in tree(tmp_path) if not p.startswith("store")} <= {"cache", "cache/m"}


def test_serving_a_file_that_is_not_a_model_fails_at_once(tmp_path: Path) -> None:
    for command in ("serve", "predict"):
        args = [command, "/etc/passwd"] + (["-i", "{}"] if command == "predict" else [])
        one_line_error(shipml(*args), "/etc/passwd is not a model file: a model file is", ".onnx")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    for command in ("serve", "predict"):
        args = [command, str(garbage)] + (["-i", "{}"] if command == "predict" else [])
        one_line_error(shipml(*args), "is not a model file shipml can load", "joblib.dump")


def test_damaged_aliases_and_manifests_are_one_line(store: Store) -> None:
    write_version(store, "m", 1, {"model.joblib": b"x"})
    store.backend.write("models/m/aliases/prod", b"\x00garbage")
    one_line_error(
        shipml("predict", "m@prod", "-i", "{}"),
        "m@prod",
        "is damaged",
        "shipml models alias m VERSION prod",
    )
    listing = shipml("models", "list")
    assert listing.returncode == 0 and "m:1" in listing.stdout and "is damaged" in listing.stderr
    store.backend.write(
        "models/n/versions/1/manifest.json", b'{"name": "n", "version": 1, "files": {}}'
    )
    one_line_error(shipml("models", "show", "n:1"), "manifest n:1 lists no files")
    one_line_error(shipml("predict", "n:1", "-i", "{}"), "manifest n:1 lists no files")
    store.backend.write("models/n/versions/2/manifest.json", b"\xff\xfe not json")
    one_line_error(shipml("serve", "n:2"), "manifest n:2 is not JSON")
    listing = shipml("models", "list")
    assert (
        listing.returncode == 0
        and "unreadable" in listing.stdout
        and "n:2 is not JSON" in listing.stderr
    )


def test_a_full_cache_disk_is_one_line_and_leaves_nothing(iris_model: str) -> None:
    with small_disk("64k") as disk:
        filler = fill(disk)
        result = subprocess.run(
            [SHIPML, "predict", iris_model, "-i", "{}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "SHIPML_CACHE": str(disk / "cache")},
        )
        one_line_error(result, f"the disk holding {disk}/cache", "is full", "SHIPML_CACHE")
        assert files_in(disk) == [filler.name]
        assert list(disk.rglob(".tmp-*")) == []


def test_a_full_store_disk_during_train_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    run_shipml("init", str(tmp_path / "proj"), "--template", "blank")
    with small_disk("64k") as disk:
        store = disk / "store"
        run_shipml("models", "list", env={"SHIPML_STORE": str(store)})  # creates the folder
        filler = fill(disk)
        result = run_shipml(
            "train", cwd=tmp_path / "proj", env={"SHIPML_STORE": str(store)}, check=False
        )
        one_line_error(result, f"the disk holding {store} is full", "Free some space there")
        assert files_in(disk) == [filler.name]  # no .tmp-* blob, nothing half-written
        filler.unlink()
        assert (
            "Registered proj:1"
            in run_shipml("train", cwd=tmp_path / "proj", env={"SHIPML_STORE": str(store)}).stdout
        )


def test_a_store_folder_this_user_cannot_read_is_one_line(store: Store) -> None:
    prefix = as_another_user()
    write_version(store, "m", 1, {"model.joblib": b"x"})
    root = Path(store.url)
    os.chown(root, NOBODY, NOBODY)
    root.chmod(0o700)
    one_line_error(shipml("models", "list", prefix=prefix), "permission denied", str(root))
    one_line_error(shipml("predict", "m:1", "-i", "{}", prefix=prefix), "permission denied")


def test_a_serving_user_other_than_the_trainer_reads_the_store(tmp_path: Path) -> None:
    prefix = as_another_user()
    old = os.umask(0o022)
    try:
        run_shipml("init", str(tmp_path / "proj"), "--template", "blank")
        run_shipml("train", cwd=tmp_path / "proj")
    finally:
        os.umask(old)
    root = Path(os.environ["SHIPML_STORE"])
    for path in [root, *root.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)  # the trainer was another user
    answer = shipml("predict", "proj:1", "-i", '{"x1": 1.0, "x2": 0.9}', prefix=prefix)
    assert answer.returncode == 0, answer.stderr
    assert '"label"' in answer.stdout


def test_trust_checks_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, public = key_pair(tmp_path, "release")
    run_shipml("init", str(tmp_path / "proj"), "--template", "blank")
    run_shipml("train", cwd=tmp_path / "proj")
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(public))
    record = '{"x1": 1.0, "x2": 0.9}'
    one_line_error(
        shipml("predict", "proj:1", "-i", record), "refusing proj:1", "no trusted key signed it"
    )
    signed = run_shipml("models", "sign", "proj:1", env={"SHIPML_SIGNING_KEY": str(secret)})
    assert "Signed proj:1 with ed25519-" in signed.stdout
    assert '"label"' in run_shipml("predict", "proj:1", "-i", record).stdout
    assert "signed_by" in run_shipml("models", "show", "proj:1").stdout
