"""A serve image for a non-scikit-learn flavour: a LightGBM model gets LightGBM (the trained
version), pandas and the system's OpenMP runtime, not scikit-learn, and passes its smoke
test (ready, the right versions, its example answered)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import BUILD_CACHE, run_shipml

pytestmark = [pytest.mark.docker, pytest.mark.slow]
BASE = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
TAG = "shipml-test/flavours-lightgbm:1"
TRAIN = """
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier

import shipml

rng = np.random.default_rng(0)
X = pd.DataFrame({"size": rng.normal(size=300), "colour": pd.Categorical(rng.choice(["red", "blue"], 300))})
X.loc[rng.random(300) < 0.1, "size"] = np.nan
y = np.where((X["size"].fillna(0) > 0) ^ (X["colour"] == "red"), "yes", "no")
model = LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
shipml.save_model(model, training_data=X)
"""
LIST = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
)


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(TAG, force=True)


def test_a_lightgbm_image_gets_its_packages_and_answers(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    project = tmp_path / "lgbm"
    project.mkdir()
    (project / "shipml.yaml").write_text("name: lgbm\ntrain: train.py\n")
    (project / "train.py").write_text(TRAIN)
    env = {
        "SHIPML_STORE": str(tmp_path / "store"),
        "SHIPML_BUILD_CACHE": BUILD_CACHE,
    }
    run_shipml("train", cwd=project, env=env)
    built = run_shipml("build", "lgbm:1", "--tag", TAG, "--base-image", BASE, cwd=project, env=env)
    assert f"Built {TAG}" in built.stdout + built.stderr
    assert "ready in" in built.stdout + built.stderr  # the smoke test passed
    output = engine.containers.run(TAG, ["-c", LIST], entrypoint="python3", remove=True)
    installed = json.loads(output)
    manifest = json.loads(
        next(
            (tmp_path / "store" / "models" / "lgbm" / "versions").glob("1/manifest.json")
        ).read_text()
    )
    assert installed["lightgbm"] == manifest["libraries"]["lightgbm"]
    assert installed["pandas"] == manifest["libraries"]["pandas"]
    assert "scikit-learn" not in installed  # served from the Booster alone
    assert not any(name.startswith("nvidia") for name in installed)
