"""``shipml serve --onnx`` and the refusals of ``--onnx``, with real server processes."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipml
from shipml.scoring.convert import onnx_version
from shipml.store import Store, parse_reference
from tests.conftest import SEED_IRIS_RECORD, Server, run_shipml
from tests.integration.test_azure import CONNECTION

pytestmark = pytest.mark.slow


@pytest.fixture
def iris_example(trained_example: Callable[..., str]) -> str:
    """The seed's iris project (calibrated SVC, species names), trained into the test store."""
    trained_example("iris")
    return "iris:1"


@pytest.fixture
def float32_victim() -> str:
    """A model whose signal float32 cannot hold: features near 1e6, varying in hundredths."""
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 0.01, size=(300, 2))
    y = np.where(offsets.sum(axis=1) > 0, "up", "down")
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(1e6 + offsets, y)
    return shipml.save_model(model, training_data=1e6 + offsets, name="drift")


def test_serve_onnx_answers_the_seed_request(
    iris_example: str, serve: Callable[..., Server]
) -> None:
    server = serve(iris_example, "--onnx", "--workers", "2")
    log = server.log.read_text()
    assert re.search(r"ONNX Runtime: converted and checked on 151 rows", log), log
    with server.client() as client:
        answer = client.post("/predict", json=SEED_IRIS_RECORD).json()
        assert answer["label"] == "virginica"
        assert set(answer["probabilities"]) == {"setosa", "versicolor", "virginica"}
        listed = client.post("/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]] * 3}).json()
        assert [r["label"] for r in listed] == ["setosa"] * 3
        info = client.get("/info").json()
        assert info["engine"] == "onnxruntime" and info["ref"] == iris_example
        # null: no class where a model's probabilities are not numbers (docs/http-api.md)
        assert info["output_schema"]["properties"]["label"]["enum"] == [
            "setosa",
            "versicolor",
            "virginica",
            None,
        ]
        bad = client.post("/predict", json={**SEED_IRIS_RECORD, "petal_width": "wide"})
        assert bad.status_code == 422 and "'petal_width'" in bad.json()["error"]["message"]
    plain = serve(iris_example)
    with plain.client() as client:
        assert client.get("/info").json()["engine"] == "scikit-learn"
        sklearn_answer = client.post("/predict", json=SEED_IRIS_RECORD).json()
    assert sklearn_answer["label"] == answer["label"]
    for key, value in sklearn_answer["probabilities"].items():
        assert abs(answer["probabilities"][key] - value) < 1e-4


def test_a_restarted_worker_still_finds_the_converted_model(
    iris_example: str, serve: Callable[..., Server]
) -> None:
    """Workers load the converted folder themselves: one restarted by the master loads it
    again and answers (the folder outlives any worker; only the CLI process removes it)."""
    server = serve(iris_example, "--onnx")
    worker = int(re.findall(r"Booting worker with pid: (\d+)", server.log.read_text())[0])
    os.kill(worker, signal.SIGTERM)  # a graceful worker exit; the master starts another
    deadline = time.monotonic() + 60
    while len(re.findall(r"Booting worker", server.log.read_text())) < 2:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.1)
    server.wait_ready()
    with server.client() as client:
        got = client.post("/predict", json=SEED_IRIS_RECORD)
        assert got.status_code == 200, (got.text, server.log.read_text())
        assert got.json()["label"] == "virginica"
    assert "model not loaded" not in server.log.read_text()


def test_a_conversion_that_disagrees_is_refused_before_serving_or_building(
    float32_victim: str,
) -> None:
    served = run_shipml("serve", float32_victim, "--onnx", "--port", "1", check=False)
    built = run_shipml("build", float32_victim, "--onnx", "--tag", "shipml-test/x", check=False)
    for result in (served, built):
        assert result.returncode == 1
        message = " ".join(result.stderr.split())
        assert "does not answer like scikit-learn on" in message and "of 301 check rows" in message
        assert "serve this version without --onnx" in message and "Traceback" not in message
    assert "Playground" not in served.stdout  # never started
    assert "Building" not in built.stdout


def test_onnx_needs_a_store_version_and_a_serve_image(tmp_path: Path) -> None:
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    joblib.dump(model, tmp_path / "model.joblib")
    bare = run_shipml("serve", str(tmp_path / "model.joblib"), "--onnx", check=False)
    assert bare.returncode == 1 and "save_model" in bare.stderr
    train = run_shipml("build", "--target", "train", "--onnx", "--tag", "x", check=False)
    assert train.returncode == 1 and "--onnx is for serve images" in train.stderr


@pytest.mark.azure
def test_the_sample_travels_through_azure_blob_storage(
    monkeypatch: pytest.MonkeyPatch, iris_data: tuple[np.ndarray, np.ndarray]
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CONNECTION)
    store = Store(f"az://onnx{uuid.uuid4().hex[:12]}/models")
    monkeypatch.setenv("SHIPML_STORE", store.url)
    x, y = iris_data
    ref = shipml.save_model(LogisticRegression(max_iter=500).fit(x, y), training_data=x, name="i")
    local = store.fetch(parse_reference(ref))
    with onnx_version(local, store) as (_, check):
        assert check.rows == 151 and check.differing == 0
    blob = "blobs/sha256/" + local.manifest.data["sample"]["digest"].removeprefix("sha256:")
    assert store.backend.exists(blob)
    store.remove("i", 1)
    assert not store.backend.exists(blob)
