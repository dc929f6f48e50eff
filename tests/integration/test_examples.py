"""The example projects and `make demo` work as their READMEs say."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    REPO,
    SEED_IRIS_RECORD,
    Server,
    free_port,
    run_shipml,
    wait_until_ready,
)

pytestmark = pytest.mark.slow


def test_iris_example(tmp_path: Path, serve: Callable[..., Server]) -> None:
    project = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", project)
    trained = run_shipml("train", cwd=project)
    assert "Registered iris:1" in trained.stdout and "accuracy 0.9" in trained.stdout
    server = serve("iris@latest")
    with server.client() as client:
        answer = client.post("/predict", json=SEED_IRIS_RECORD).json()
        assert answer["label"] == "virginica" and answer["probabilities"]["virginica"] > 0.8
        assert len(client.post("/predict", json=[SEED_IRIS_RECORD] * 3).json()) == 3
        info = client.get("/info").json()
        assert info["classes"] == ["setosa", "versicolor", "virginica"]
        assert info["example"] == {
            "sepal_length": 5.1,
            "sepal_width": 3.5,
            "petal_length": 1.4,
            "petal_width": 0.2,
        }


def test_make_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHIPML_PORT": str(port), "SHIPML_STORE": str(tmp_path / "store")}
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        demo = subprocess.Popen(
            ["make", "demo"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, 240, lambda: demo.poll() is None, log)
        positive = httpx.post(f"{url}/predict", json={"text": "I love this"}).json()
        negative = httpx.post(
            f"{url}/predict", json={"text": "This was terrible and a waste of money"}
        ).json()
        assert positive["score"] > 0.5 and positive["label"] == "positive"
        assert negative["score"] < 0.5 and negative["label"] == "negative"
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}/" in printed and "curl -X POST" in printed
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
