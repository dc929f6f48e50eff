"""A model with transformers of its own, served where that code does not exist.

tests/fixtures/own_code/README.md says where the material comes from: the California
housing pipeline of a public notebook, whose own API has to patch its transformers into
``__main__`` before ``joblib.load``. Here the training script runs as the user runs it
(``python train.py``: its classes are ``__main__``'s, another pair is imported from
``features.py`` beside it), saves both models with ``shipml.save_model``, and records
scikit-learn's own predictions on held-out rows. Then each model answers from another
folder, in a fresh process (``shipml predict``) and under ``shipml serve``: the answers
must equal scikit-learn's in-process ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FORKED_PYTHON, REPO, Server, run_shipml

pytestmark = pytest.mark.slow
FIXTURE = REPO / "tests" / "fixtures" / "own_code"
RELATIVE = 1e-9


def train(root: Path) -> tuple[Path, dict[str, Any]]:
    """Run the fixture's train.py as a user would; returns the store both models were
    saved to and the script's own record of them (rows and in-process predictions)."""
    project = root / "project"
    shutil.copytree(FIXTURE, project)
    store = root / "store"
    done = subprocess.run(
        [FORKED_PYTHON, "train.py"],
        check=False,
        cwd=project,
        env={**os.environ, "SHIPML_STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return store, json.loads((project / "expected.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return train(tmp_path_factory.mktemp("own_code"))


def same(answers: list[dict[str, Any]], expected: list[float], label: str) -> None:
    got = [answer["prediction"] for answer in answers]
    assert len(got) == len(expected), label
    for index, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert abs(mine - theirs) <= RELATIVE * abs(theirs), f"{label} row {index}"


@pytest.mark.parametrize("name", ["housing_notebook", "housing_module"])
def test_a_model_answers_where_its_own_code_is_not(
    trained: tuple[Path, dict[str, Any]], name: str, tmp_path: Path
) -> None:
    store, record = trained
    reference = f"{name}:1"
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(record["rows"]))
    elsewhere = tmp_path / "elsewhere"  # no features.py, no helpers.py, no train.py here
    elsewhere.mkdir()
    answered = run_shipml(
        "predict", reference, "--input", f"@{rows}", "--store", str(store), cwd=elsewhere
    )
    same(json.loads(answered.stdout), record["predictions"][reference], f"{reference} predict")


def test_the_service_answers_and_describes_the_frame_columns(
    trained: tuple[Path, dict[str, Any]], serve: Callable[..., Server]
) -> None:
    store, record = trained
    server = serve("housing_notebook:1", env={"SHIPML_STORE": str(store)})
    with server.client() as client:
        answers = client.post("/predict", json=record["rows"]).json()
        same(answers, record["predictions"]["housing_notebook:1"], "served")
        schema = client.get("/info").json()["input_schema"]
        assert "string" in schema["properties"]["ocean_proximity"]["type"]
        assert "null" in schema["properties"]["total_bedrooms"]["type"]
