"""Images with a real Docker engine and a real registry (started by scripts/ in make test)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from shipml.image import engine
from tests.conftest import BUILD_CACHE, REPO, SEED_IRIS_RECORD, run_shipml

pytestmark = pytest.mark.docker
BASE = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
REGISTRY = f"127.0.0.1:{os.environ.get('SHIPML_TEST_REGISTRY_PORT', '5000')}"
REGISTRY_USER, REGISTRY_PASSWORD = "shipml", "shipml-test-password"
SECRET = "s3cret-value-that-must-not-leak"


class Workspace:
    """One store, cache and Docker config shared by the image tests of a session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "store"
        self.env = {
            "SHIPML_STORE": str(self.store),
            "SHIPML_CACHE": str(root / "cache"),
            "SHIPML_BUILD_CACHE": BUILD_CACHE,
            "DOCKER_CONFIG": str(root / "docker"),
            "HOME": str(root / "home"),
            # Secrets in the build's environment must never reach an image.
            "AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={SECRET}",
            "SHIPML_REGISTRY_PASSWORD": SECRET,
        }

    def shipml(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> str:
        result = run_shipml(*args, cwd=cwd, check=check, env={**self.env, **(env or {})})
        return result.stdout + result.stderr

    def project(self, name: str) -> Path:
        target = self.root / name
        if not target.exists():
            shutil.copytree(REPO / "examples" / name, target)
        return target


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    for container in engine.containers.list(all=True, filters={"label": "io.shipml.run"}):
        container.remove(force=True)


@pytest.fixture(scope="session")
def iris_image(workspace: Workspace) -> str:
    project = workspace.project("iris")
    workspace.shipml("train", cwd=project)
    tag = "shipml-test/iris:1"
    output = workspace.shipml("build", "iris:1", "--tag", tag, "--base-image", BASE, cwd=project)
    assert f"Built {tag}" in output and "ready in" in output
    return tag


def run_and_predict(
    workspace: Workspace, image: str, record: dict[str, object]
) -> dict[str, object]:
    output = workspace.shipml("run", image)
    found = re.search(r"ready at (http://\S+?)/ .*container (\S+?)\)", output)
    assert found, output
    url, name = found.groups()
    try:
        answer = httpx.post(f"{url}/predict", json=record, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())
    finally:
        assert "Stopped" in workspace.shipml("stop", name)


def test_iris_image_answers_the_seed_request(workspace: Workspace, iris_image: str) -> None:
    answer = run_and_predict(workspace, iris_image, SEED_IRIS_RECORD)
    assert answer["label"] == "virginica"


def test_image_is_non_root_labelled_and_clean(
    workspace: Workspace, iris_image: str, client: docker.DockerClient
) -> None:
    image = client.images.get(iris_image)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert "8000/tcp" in config["ExposedPorts"] and config["Healthcheck"]["Test"]
    shown = json.loads(workspace.shipml("models", "show", "iris:1"))
    labels = config["Labels"]
    assert labels["io.shipml.model.name"] == "iris"
    assert labels["io.shipml.model.version"] == "1"
    assert labels["io.shipml.model.digest"] == shown["digest"]
    assert json.loads(labels["io.shipml.model.input-schema"])["required"][0] == "sepal_length"
    uid = client.containers.run(iris_image, entrypoint=["id", "-u"], remove=True)
    assert uid.decode().strip() == "10001"
    history = json.dumps(image.history())
    assert SECRET not in history
    container = client.containers.create(iris_image)
    try:
        tar = b"".join(container.export())
    finally:
        container.remove()
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive:
            if member.isfile() and member.size < 50_000_000:
                handle = archive.extractfile(member)
                assert handle is not None
                assert SECRET.encode() not in handle.read(), member.name


# Every module a serve container imports at start, from the standard library to the
# model's library, has its bytecode in the image: none is compiled at each start
# (PYTHONDONTWRITEBYTECODE is set, and the official python images ship no stdlib .pyc).
UNCOMPILED = """
import importlib.util, os, sys
import shipml.serving.__main__, shipml.serving.app, sklearn.svm
print([m.__file__ for m in list(sys.modules.values())
       if (getattr(m, "__file__", None) or "").endswith(".py")
       and not os.path.exists(importlib.util.cache_from_source(m.__file__))])
"""


def test_a_container_compiles_nothing_it_imports_at_start(
    iris_image: str, client: docker.DockerClient
) -> None:
    shown = client.containers.run(iris_image, entrypoint=["python3", "-c", UNCOMPILED], remove=True)
    assert shown.decode().strip() == "[]"


@pytest.mark.parametrize(
    "hardened",
    [
        {"read_only": True},  # docker run --read-only: no writable /tmp, only /dev/shm
        {"read_only": True, "user": "12345:0", "cap_drop": ["ALL"]},  # OpenShift's any-UID
    ],
)
def test_image_serves_on_a_read_only_root_as_any_user(
    iris_image: str, client: docker.DockerClient, hardened: dict[str, Any]
) -> None:
    container = client.containers.run(
        iris_image, detach=True, ports={"8000/tcp": ("127.0.0.1", None)}, **hardened
    )
    try:
        url = engine.published_url(container)
        engine.wait_ready(container, url)
        answer = httpx.post(f"{url}/predict", json=SEED_IRIS_RECORD, timeout=30)
        assert answer.json()["label"] == "virginica", answer.text
        assert "temporary files: /dev/shm" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_model_only_rebuild_changes_only_the_model_layer(
    workspace: Workspace, iris_image: str, client: docker.DockerClient
) -> None:
    project = workspace.project("iris")
    workspace.shipml("train", cwd=project)
    workspace.shipml("build", "iris:2", "--tag", "shipml-test/iris:2", "--base-image", BASE)
    before = client.images.get(iris_image).attrs["RootFS"]["Layers"]
    after = client.images.get("shipml-test/iris:2").attrs["RootFS"]["Layers"]
    assert len(before) == len(after)
    assert before[:-1] == after[:-1], "only the last (model) layer may differ"
    assert before[-1] != after[-1]


def test_push_pull_with_auth(
    workspace: Workspace, iris_image: str, client: docker.DockerClient
) -> None:
    remote = f"{REGISTRY}/shipml-test/iris:1"
    client.images.get(iris_image).tag(remote)
    wrong = workspace.shipml(
        "login",
        REGISTRY,
        "-u",
        REGISTRY_USER,
        check=False,
        env={"SHIPML_REGISTRY_PASSWORD": "wrong"},
    )
    assert "wrong user name or password" in wrong and "Traceback" not in wrong
    refused = workspace.shipml(
        "push", remote, check=False, env={"DOCKER_CONFIG": str(workspace.root / "nologin")}
    )
    assert "shipml login" in refused and "Traceback" not in refused
    workspace.shipml(
        "login", REGISTRY, "-u", REGISTRY_USER, env={"SHIPML_REGISTRY_PASSWORD": REGISTRY_PASSWORD}
    )
    pushed = workspace.shipml("push", remote)
    assert re.search(r"Pushed .* sha256:[0-9a-f]{64}", pushed), pushed
    client.images.remove(remote)
    auth = {"username": REGISTRY_USER, "password": REGISTRY_PASSWORD}
    client.images.pull(f"{REGISTRY}/shipml-test/iris", tag="1", auth_config=auth)
    assert run_and_predict(workspace, remote, SEED_IRIS_RECORD)["label"] == "virginica"


def test_train_image_registers_into_a_mounted_store(
    workspace: Workspace, client: docker.DockerClient, tmp_path: Path
) -> None:
    project = workspace.project("iris")
    workspace.shipml(
        "build",
        "--target",
        "train",
        "--tag",
        "shipml-test/iris-train:1",
        "--base-image",
        BASE,
        cwd=project,
    )
    store = tmp_path / "mounted-store"
    store.mkdir()
    store.chmod(0o777)  # the image runs as uid 10001
    logs = client.containers.run(
        "shipml-test/iris-train:1",
        environment={"SHIPML_STORE": "/store"},
        volumes={str(store): {"bind": "/store", "mode": "rw"}},
        remove=True,
    ).decode()
    assert "Registered iris:1" in logs
    listing = workspace.shipml("models", "list", "--store", str(store))
    assert "iris:1" in listing
    shown = json.loads(workspace.shipml("models", "show", "iris:1", "--store", str(store)))
    assert shown["source"].get("commit") is None or len(shown["source"]["commit"]) == 40


def test_sentiment_image_uses_score_py(
    workspace: Workspace, trained_example: Callable[..., str]
) -> None:
    project = workspace.project("sentiment")
    trained_example("sentiment", store=workspace.store)
    workspace.shipml(
        "build",
        "sentiment@latest",
        "--tag",
        "shipml-test/sentiment:1",
        "--base-image",
        BASE,
        cwd=project,
    )
    answer = run_and_predict(workspace, "shipml-test/sentiment:1", {"text": "I love this"})
    assert answer["label"] == "positive" and float(str(answer["score"])) > 0.5


def test_framework_mismatch_fails_the_build(workspace: Workspace) -> None:
    project = workspace.root / "iris-mismatch"
    shutil.copytree(workspace.project("iris"), project)
    workspace.shipml("train", cwd=project)
    (project / "requirements.txt").write_text("scikit-learn==1.8.0\n")
    output = workspace.shipml(
        "build",
        "iris@latest",
        "--tag",
        "shipml-test/iris:bad",
        "--base-image",
        BASE,
        cwd=project,
        check=False,
    )
    assert "scikit-learn==1.9" in output and "scikit-learn==1.8.0" in output
    assert "Traceback" not in output


def test_dockerfile_only(workspace: Workspace, iris_image: str) -> None:
    folder = workspace.root / "context"
    workspace.shipml(
        "build", "iris:1", "--tag", "x", "--base-image", BASE, "--dockerfile-only", str(folder)
    )
    dockerfile = (folder / "Dockerfile").read_text()
    assert "RUN --mount" not in dockerfile and "HEALTHCHECK" in dockerfile
    assert "USER 10001:10001" in dockerfile and "EXPOSE 8000" in dockerfile
    assert (folder / "wheels" / "requirements.lock").is_file()
    assert (folder / "model" / "manifest.json").is_file()
