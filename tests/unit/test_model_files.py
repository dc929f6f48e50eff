"""Registered model files keep Azure ML's relative paths; what could escape or clash is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import shipml
from shipml.errors import ProjectError, TrainingError
from shipml.model_files import ModelFilesError, collect
from shipml.project import load_project
from shipml.store import Store, parse_reference
from shipml.train import train_project


def tree(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)


def test_a_file_lands_under_its_name_and_a_folder_keeps_its_tree(tmp_path: Path) -> None:
    tree(tmp_path, {"outputs/model.pkl": "m", "model/a/b.pkl": "b", "model/c.json": "c"})
    found = collect([tmp_path / "outputs" / "model.pkl", tmp_path / "model"])
    assert list(found) == ["model.pkl", "model/a/b.pkl", "model/c.json"]


@pytest.mark.parametrize(
    ("files", "names", "words"),
    [
        ({"code/x.py": "x"}, ["code"], "'code' is shipml's own"),
        ({"manifest.json": "{}"}, ["manifest.json"], "reserved"),
        ({"model.joblib": "m"}, ["model.joblib"], "reserved"),
        ({"a/m.pkl": "1", "b/m.pkl": "2"}, ["a/m.pkl", "b/m.pkl"], "would both be stored"),
        ({"empty/.keep": ""}, ["missing.pkl"], "does not exist"),
    ],
)
def test_clashes_and_missing_files_are_refused(
    tmp_path: Path, files: dict[str, str], names: list[str], words: str
) -> None:
    tree(tmp_path, files)
    with pytest.raises(ModelFilesError, match=words):
        collect([tmp_path / name for name in names])


def test_symbolic_links_out_of_a_registered_folder_are_refused(tmp_path: Path) -> None:
    tree(tmp_path, {"secret.txt": "s", "model/m.pkl": "m", "model/sub/n.pkl": "n"})
    (tmp_path / "model" / "inside.pkl").symlink_to(tmp_path / "model" / "m.pkl")
    assert "model/inside.pkl" in collect([tmp_path / "model"])  # inside: copied
    (tmp_path / "model" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ModelFilesError, match="outside"):
        collect([tmp_path / "model"])
    (tmp_path / "model" / "leak.txt").unlink()
    (tmp_path / "model" / "dir").symlink_to(tmp_path / "model" / "sub")
    with pytest.raises(ModelFilesError, match="symbolic link to a folder"):
        collect([tmp_path / "model"])
    (tmp_path / "model" / "dir").unlink()
    (tmp_path / "model" / "empty").mkdir()
    (tmp_path / "other").mkdir()
    with pytest.raises(ModelFilesError, match="empty"):
        collect([tmp_path / "other"])


def project(tmp_path: Path, yaml: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "p"
    tree(root, {"score.py": "def init(): pass\ndef run(data): return data\n", **(files or {})})
    (root / "shipml.yaml").write_text(yaml)
    return root


@pytest.mark.parametrize(
    ("yaml", "words"),
    [
        ("name: a\nscoring: score.py\nmodel: ../x.pkl\n", "inside the project folder"),
        ("name: a\nscoring: score.py\nmodel: /etc/passwd\n", "inside the project folder"),
        ("name: a\nscoring: score.py\nmodel: {a: 1}\n", "must be a file or folder"),
        ("name: a\nmodel: m.pkl\n", "add scoring: score.py"),
        ("name: a\n", "'train' is required"),
    ],
)
def test_model_key_is_checked(tmp_path: Path, yaml: str, words: str) -> None:
    with pytest.raises(ProjectError, match=words):
        load_project(project(tmp_path, yaml, {"m.pkl": "m"}))


def test_model_key_leading_out_through_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    root = project(tmp_path, "name: a\nscoring: score.py\nmodel: link/\n")
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ProjectError, match="outside the project folder"):
        load_project(root)


def test_model_key_registers_without_training(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "name: reg\nscoring: score.py\nmodel: [model/, scaler.pkl]\n",
        {"model/nested/m.pkl": "m", "scaler.pkl": "s"},
    )
    manifest, _ = train_project(load_project(root), Store())
    assert set(manifest.files) == {"model/nested/m.pkl", "scaler.pkl", "score.py"}
    assert manifest.model_file is None and manifest.framework == {}
    assert all(entry.digest.startswith("sha256:") for entry in manifest.files.values())
    local = Store().fetch(parse_reference("reg@latest"))
    assert (local.folder / "model" / "nested" / "m.pkl").read_text() == "m"


def test_save_model_none_is_refused_for_zero_code_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(tmp_path, {"model/m.pkl": "m"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainingError, match="only a project with a scoring script"):
        shipml.save_model(None, files=["model/"], name="none")


def test_save_model_files_with_folders_in_a_score_py_project(tmp_path: Path) -> None:
    train = (
        "import joblib, shipml\n"
        "from sklearn.linear_model import LinearRegression\n"
        "joblib.dump(LinearRegression().fit([[0], [1]], [0, 1]), 'model/m.pkl')\n"
        "shipml.save_model(None, files=['model/'])\n"
    )
    root = project(
        tmp_path,
        "name: t\ntrain: train.py\nscoring: score.py\n",
        {"train.py": train, "model/.k": ""},
    )
    os.environ.pop("SHIPML_OUTPUT", None)
    manifest, _ = train_project(load_project(root), Store())
    assert {"model/m.pkl", "model/.k", "score.py"} == set(manifest.files)
    assert manifest.model_file is None
