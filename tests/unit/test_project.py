from pathlib import Path

import pytest

from shipml.errors import ProjectError
from shipml.project import load_project


def write(folder: Path, yaml: str, *files: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "shipml.yaml").write_text(yaml)
    for name in files:
        (folder / name).write_text("")
    return folder


def test_full_project(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        "name: iris\ntrain: train.py\nscoring: score.py\nenvironment: requirements.txt\n"
        "serve: {workers: 2}\n",
        "train.py",
        "score.py",
        "requirements.txt",
    )
    project = load_project(root)
    assert project.name == "iris"
    assert project.contract == "azureml"
    assert project.serve == {"workers": 2}


def test_class_contract(tmp_path: Path) -> None:
    root = write(tmp_path / "p", "name: m\ntrain: t.py\nscoring: p.py:Predictor\n", "t.py", "p.py")
    project = load_project(root)
    assert project.contract == "class" and project.scoring_class == "Predictor"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("train: t.py\n", "key 'name' must be a model name"),
        ("name: Bad Name\ntrain: t.py\n", "key 'name'"),
        ("name: m\n", "key 'train' is required"),
        ("name: m\ntrain: missing.py\n", "key 'train' names 'missing.py' but"),
        ("name: m\ntrain: t.py\nscoring: t.py:9x\n", "key 'scoring' must be FILE.py"),
        ("name: m\ntrain: t.py\nserve: 3\n", "key 'serve' must be a mapping"),
        ("name: m\ntrain: t.py\nworkers: 3\n", "key 'workers' is not known"),
        ("name: m\ntrain: [t.py\n", "not valid YAML"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, yaml: str, message: str) -> None:
    root = write(tmp_path / "p", yaml, "t.py")
    with pytest.raises(ProjectError, match=message) as caught:
        load_project(root)
    assert str(root / "shipml.yaml") in caught.value.message or "YAML" not in message


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no shipml.yaml"):
        load_project(tmp_path)
