"""``shipml build --onnx``: a serve image that answers through ONNX Runtime, without
scikit-learn, built on the stand-in base with the real Docker engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from shipml.image import engine
from tests.conftest import SEED_IRIS_RECORD
from tests.integration.test_image import BASE, Workspace, run_and_predict

pytestmark = pytest.mark.docker
TAG = "shipml-test/onnx-iris:1"


@pytest.fixture(scope="module")
def onnx_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("onnx-images"))


@pytest.fixture(scope="module")
def onnx_image(onnx_workspace: Workspace) -> Iterator[str]:
    project = onnx_workspace.project("iris")
    onnx_workspace.shipml("train", cwd=project)
    output = onnx_workspace.shipml(
        "build", "iris:1", "--onnx", "--tag", TAG, "--base-image", BASE, cwd=project
    )
    assert "ONNX Runtime: converted and checked on 151 rows" in output, output
    assert f"Built {TAG}" in output and "ready in" in output, output  # smoke test passed
    yield TAG
    docker.from_env().images.remove(TAG, noprune=True)


def test_onnx_image_answers_the_seed_request(onnx_workspace: Workspace, onnx_image: str) -> None:
    assert run_and_predict(onnx_workspace, onnx_image, SEED_IRIS_RECORD)["label"] == "virginica"


def test_onnx_image_says_so_and_carries_no_scikit_learn(onnx_image: str) -> None:
    client = docker.from_env()
    labels = client.images.get(onnx_image).attrs["Config"]["Labels"]
    assert labels["io.shipml.engine"] == "onnxruntime"
    container = engine.run(client, onnx_image, port=None)
    try:
        url = engine.published_url(container)
        engine.wait_ready(container, url)
        info = httpx.get(f"{url}/info", timeout=10).json()
        assert info["engine"] == "onnxruntime" and info["ref"] == "iris:1"
        assert "scikit-learn" not in info["runtime"] and "onnxruntime" in info["runtime"]
        assert info["framework"]["name"] == "scikit-learn"  # what it was trained with
    finally:
        engine.remove_container(container)
    probe = "import importlib.util as u; print([u.find_spec(m) is None for m in ('sklearn', 'scipy', 'skl2onnx')])"
    output = client.containers.run(onnx_image, entrypoint=["python3", "-c", probe], remove=True)
    assert output.decode().strip() == "[True, True, True]"


def test_onnx_context_holds_the_checked_graph(onnx_workspace: Workspace, onnx_image: str) -> None:
    folder = onnx_workspace.root / "onnx-context"
    onnx_workspace.shipml(
        "build", "iris:1", "--onnx", "--tag", "x", "--base-image", BASE, "--dockerfile-only",
        str(folder),
    )  # fmt: skip
    record = json.loads((folder / "model" / "onnx" / "conversion.json").read_text())
    assert record["check"]["differing"] == 0 and record["check"]["rows"] == 151
    assert (folder / "model" / "onnx" / "model.onnx").is_file()
    lock = (folder / "wheels" / "requirements.lock").read_text()
    assert "onnxruntime==" in lock and "scikit-learn" not in lock and "scipy" not in lock
    assert not list(Path(folder / "model").glob("*.npy"))  # the training sample stays home
