"""The command line, run as a user runs it: real processes, real store folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_shipml, train_in_parallel

pytestmark = pytest.mark.slow


def blank_project(tmp_path: Path) -> Path:
    run_shipml("init", str(tmp_path / "proj"), "--template", "blank")
    return tmp_path / "proj"


def test_init_train_list_show(tmp_path: Path) -> None:
    project = blank_project(tmp_path)
    assert {p.name for p in project.iterdir()} == {"shipml.yaml", "train.py", "requirements.txt"}
    trained = run_shipml("train", cwd=project)
    assert "Registered proj:1" in trained.stdout and "train_accuracy" in trained.stdout
    listing = run_shipml("models", "list")
    assert "proj:1" in listing.stdout
    shown = json.loads(run_shipml("models", "show", "proj@latest").stdout)
    assert shown["version"] == 1 and shown["digest"].startswith("sha256:")
    assert (
        shown["libraries"]["scikit-learn"]
        and shown["environment"]["file"] == "env/requirements.txt"
    )
    assert shown["input_schema"]["required"] == ["x1", "x2"]
    answer = run_shipml("predict", "proj:1", "--input", '{"x1": 1.0, "x2": 0.9}')
    assert json.loads(answer.stdout)["label"] == "high"


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    result = run_shipml("init", str(tmp_path / "busy"), check=False)
    assert result.returncode == 1 and "is not empty" in result.stderr


def test_parallel_trains_get_versions_one_and_two(tmp_path: Path) -> None:
    project = blank_project(tmp_path)
    refs = train_in_parallel(project, 2)
    assert refs == ["proj:1", "proj:2"]
    store = Path(os.environ["SHIPML_STORE"])
    assert sorted(p.name for p in (store / "models/proj/versions").iterdir()) == ["1", "2"]


def test_alias_and_remove(tmp_path: Path) -> None:
    project = blank_project(tmp_path)
    run_shipml("train", cwd=project)
    run_shipml("train", cwd=project)
    assert (
        "proj@production -> proj:1"
        in run_shipml("models", "alias", "proj", "1", "production").stdout
    )
    assert json.loads(run_shipml("models", "show", "proj@production").stdout)["version"] == 1
    refused = run_shipml("models", "rm", "proj:1", check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    removed = run_shipml("models", "rm", "proj@production", "--yes")
    assert "Removed proj:1 and aliases production" in removed.stdout
    gone = run_shipml("models", "show", "proj:1", check=False)
    assert gone.returncode == 1 and "versions of proj: 2" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_tampered_blob_is_refused_by_name(iris_model: str) -> None:
    store = Path(os.environ["SHIPML_STORE"])
    shown = json.loads(run_shipml("models", "show", iris_model).stdout)
    digest = shown["files"]["model.joblib"]["digest"]
    (store / "blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(b"not a model")
    for args in (["predict", iris_model, "-i", "{}"], ["serve", iris_model]):
        result = run_shipml(*args, check=False)
        assert result.returncode == 1
        assert "refusing to load iris:1: model.joblib" in result.stderr
        assert digest in result.stderr and "Traceback" not in result.stderr


def test_training_failures_say_what_to_do(tmp_path: Path) -> None:
    project = blank_project(tmp_path)
    (project / "train.py").write_text("print('forgot to save')\n")
    result = run_shipml("train", cwd=project, check=False)
    assert result.returncode == 1 and "call shipml.save_model" in result.stderr
    (project / "train.py").write_text("raise SystemExit(3)\n")
    result = run_shipml("train", cwd=project, check=False)
    assert "exit code 3" in result.stderr and "nothing was registered" in result.stderr
    assert "No models" in run_shipml("models", "list").stdout


@pytest.mark.parametrize("template", ["iris", "sentiment"])
def test_readme_quickstart_with_templates(tmp_path: Path, template: str) -> None:
    """README: shipml init NAME --template T; cd NAME; shipml train; then predict."""
    run_shipml("init", template, "--template", template, cwd=tmp_path)
    project = tmp_path / template
    assert (project / "shipml.yaml").is_file() and (project / "train.py").is_file()
    assert f"Registered {template}:1" in run_shipml("train", cwd=project).stdout
    record = (
        '{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}'
        if template == "iris"
        else '{"text": "I love this"}'
    )
    answer = json.loads(run_shipml("predict", f"{template}@latest", "--input", record).stdout)
    assert answer["label"] in ("virginica", "positive")
