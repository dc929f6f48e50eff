"""A serve image of a model with code of its own (tests/integration/test_own_code.py): the
image has neither the training script nor features.py, and answers as scikit-learn did."""

from __future__ import annotations

from pathlib import Path

import docker
import httpx
import pytest

from shipml.image import engine
from tests.conftest import run_shipml
from tests.integration.test_image import BASE
from tests.integration.test_own_code import same, train

pytestmark = [pytest.mark.docker, pytest.mark.slow]
TAG = "shipml-test/own-code:1"


def test_an_image_serves_a_scripts_own_transformers(tmp_path: Path) -> None:
    store, record = train(tmp_path)
    built = run_shipml(
        "build", "housing_notebook:1", "--tag", TAG, "--base-image", BASE,
        "--store", str(store), cwd=tmp_path,
    )  # fmt: skip
    assert f"Built {TAG}" in built.stdout and "ready in" in built.stdout, built.stdout
    client = docker.from_env()
    container = engine.run(client, TAG, port=None)
    try:
        url = engine.published_url(container)
        engine.wait_ready(container, url)
        answers = httpx.post(f"{url}/predict", json=record["rows"], timeout=30).json()
        same(answers, record["predictions"]["housing_notebook:1"], "image")
    finally:
        engine.remove_container(container)
        client.images.remove(TAG, noprune=True)
