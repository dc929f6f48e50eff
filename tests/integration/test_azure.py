"""The Azure Blob Storage store, against the real Azurite emulator (scripts/azurite.sh)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest

from tests.conftest import (
    REPO,
    SEED_IRIS_RECORD,
    SHIPML,
    Server,
    free_port,
    run_shipml,
    train_in_parallel,
    wait_until_ready,
)
from tests.store_support import key_pair, write_version

pytestmark = pytest.mark.azure
PORT = os.environ.get("SHIPML_TEST_AZURITE_PORT", "10000")
# Azurite's published development account: a well-known key, not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONNECTION = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
    f"BlobEndpoint=http://127.0.0.1:{PORT}/devstoreaccount1;"
)


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh az:// store (its own container) with credentials in the environment only."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CONNECTION)
    url = f"az://t{uuid.uuid4().hex[:12]}/models"
    monkeypatch.setenv("SHIPML_STORE", url)
    return url


@pytest.fixture(params=["local", "azure"])
def any_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "azure":
        return str(request.getfixturevalue("azure"))
    return os.environ["SHIPML_STORE"]


def blank_project(tmp_path: Path, train: str | None = None) -> Path:
    run_shipml("init", str(tmp_path / "proj"), "--template", "blank")
    if train is not None:
        (tmp_path / "proj" / "train.py").write_text(train)
    return tmp_path / "proj"


def test_store_commands_are_the_same_on_both_stores(any_store: str, tmp_path: Path) -> None:
    project = blank_project(tmp_path)
    run_shipml("train", cwd=project)
    run_shipml("train", cwd=project)
    listing = run_shipml("models", "list").stdout
    assert "proj:1" in listing and "proj:2" in listing
    shown = json.loads(run_shipml("models", "show", "proj@latest").stdout)
    assert shown["version"] == 2 and KEY not in json.dumps(shown)
    assert (
        "proj@production -> proj:1"
        in run_shipml("models", "alias", "proj", "1", "production").stdout
    )
    answer = run_shipml("predict", "proj@production", "--input", '{"x1": 1.0, "x2": 0.9}')
    assert json.loads(answer.stdout)["label"] == "high"
    assert (
        "Removed proj:1 and aliases production"
        in run_shipml("models", "rm", "proj:1", "--yes").stdout
    )
    gone = run_shipml("models", "show", "proj@production", check=False)
    assert gone.returncode == 1 and "aliases of proj: none" in gone.stderr


def test_credentials_from_a_mounted_secret_file(
    azure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "connection-string"
    secret.write_text(CONNECTION + "\n")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING_FILE", str(secret))
    assert "Registered proj:1" in run_shipml("train", cwd=blank_project(tmp_path)).stdout
    assert "proj:1" in run_shipml("models", "list").stdout


def test_four_concurrent_trainers_get_four_versions(azure: str, tmp_path: Path) -> None:
    refs = train_in_parallel(blank_project(tmp_path), 4)
    assert refs == ["proj:1", "proj:2", "proj:3", "proj:4"]


RACE = """
import sys, time
from shipml.store import Store
store = Store(sys.argv[1])
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
created = store.backend.create("race/one-name", b"the same bytes from everyone")
print("created" if created else "lost")
"""


def test_racing_creates_of_one_blob_give_one_winner_and_no_error(azure: str) -> None:
    # Content-addressed blobs and version manifests are created exclusively, and the
    # first write to a new store also creates its container: every loser of either race
    # must see "someone else was first", never an error.
    start = str(time.time() + 3)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, azure, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-400:] for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["created"] + ["lost"] * 7


BIG_TRAIN = """
import os
import shipml
from sklearn.dummy import DummyClassifier
for name in ("a.bin", "b.bin"):
    with open(name, "wb") as handle:
        handle.write(os.urandom(96 * 1024 * 1024))
model = DummyClassifier().fit([[0], [1]], [0, 1])
shipml.save_model(model, feature_names=["x"], training_data=[[0], [1]], files=["a.bin", "b.bin"])
"""


def test_a_trainer_killed_during_upload_leaves_no_version(azure: str, tmp_path: Path) -> None:
    project = blank_project(tmp_path, BIG_TRAIN)
    fs, root = fsspec.core.url_to_fs(azure, use_listings_cache=False)
    trainer = subprocess.Popen(
        [SHIPML, "train"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and trainer.poll() is None:
        if fs.exists(f"{root}/blobs/sha256") and fs.ls(f"{root}/blobs/sha256", refresh=True):
            os.killpg(trainer.pid, signal.SIGKILL)  # the first blob is up, the rest is not
            break
        time.sleep(0.02)
    trainer.wait(timeout=30)
    assert trainer.returncode == -signal.SIGKILL, "the trainer finished before it could be killed"
    assert "No models" in run_shipml("models", "list").stdout
    assert run_shipml("models", "show", "proj", check=False).returncode == 1
    (project / "train.py").write_text(
        "import shipml\nfrom sklearn.dummy import DummyClassifier\n"
        "shipml.save_model(DummyClassifier().fit([[0], [1]], [0, 1]), feature_names=['x'],"
        " training_data=[[0], [1]])\n"
    )
    assert "Registered proj:1" in run_shipml("train", cwd=project).stdout


def test_a_tampered_blob_is_refused(azure: str, tmp_path: Path, iris_model: str) -> None:
    shown = json.loads(run_shipml("models", "show", iris_model).stdout)
    digest = shown["files"]["model.joblib"]["digest"]
    fs, root = fsspec.core.url_to_fs(azure, use_listings_cache=False)
    fs.pipe_file(f"{root}/blobs/sha256/{digest.removeprefix('sha256:')}", b"tampered")
    result = run_shipml("predict", iris_model, "-i", "{}", check=False)
    assert result.returncode == 1 and "refusing to load iris:1: model.joblib" in result.stderr
    assert digest in result.stderr


def test_serve_from_azure_and_move_the_alias(
    azure: str, serve: Callable[..., Server], iris_model: str, tmp_path: Path
) -> None:
    from sklearn.dummy import DummyClassifier

    import shipml

    constant = DummyClassifier(strategy="constant", constant="setosa").fit(
        [[0, 0, 0, 0], [1, 1, 1, 1]], ["setosa", "virginica"]
    )
    shipml.save_model(
        constant, name="iris", training_data=[[0.0, 0, 0, 0]], feature_names=list(SEED_IRIS_RECORD)
    )
    run_shipml("models", "alias", "iris", "1", "production")
    first = serve("iris@production", "--store", azure)
    with first.client() as client:
        assert client.get("/info").json()["version"] == 1
        assert client.post("/predict", json=SEED_IRIS_RECORD).json()["label"] == "virginica"
    first.stop()
    run_shipml("models", "alias", "iris", "2", "production")
    second = serve("iris@production", "--store", azure)
    with second.client() as client:
        assert client.get("/info").json()["version"] == 2
        assert client.post("/predict", json=SEED_IRIS_RECORD).json()["label"] == "setosa"
    assert KEY not in first.log.read_text() + second.log.read_text()


def ready_error(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/health/ready", timeout=5)
    assert answer.status_code == 503, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_an_unreachable_store_keeps_the_service_alive_and_not_ready(tmp_path: Path) -> None:
    dead = CONNECTION.replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{free_port()}")
    port = free_port()
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": dead,
        "SHIPML_STORE": "az://nowhere/models",
        "SHIPML_MODEL": "iris@latest",
        "SHIPML_PORT": str(port),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipml.serving"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        ready = httpx.get(f"{url}/health/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        time.sleep(2)
        assert process.poll() is None  # alive, not crash-looping
        # Each attempt says at once what it is doing, and the first one why it failed within
        # seconds: the Azure SDK's own retries no longer hold one attempt for ~80 s
        # (store/backend.py, AZURE_RETRY); /health/ready gives the reason too.
        assert "loading iris@latest from az://nowhere/models (attempt 1)" in log.read_text()
        deadline = time.monotonic() + 45
        while "model not loaded (attempt 1)" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert process.poll() is None
        text = log.read_text()
        assert "Cannot connect to host" in text, text
        # every worker tells why (retrying, or its next attempt running) once its first failed
        while "Cannot connect" not in (error := ready_error(url)).get("reason", ""):
            assert time.monotonic() < deadline, error
            time.sleep(0.5)
        assert "Traceback" not in text and KEY not in text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_a_container_pipeline_train_then_serve_from_the_store(azure: str, tmp_path: Path) -> None:
    pytest.importorskip("docker")
    import docker

    base = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
    client = docker.from_env()
    project = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", project)
    run_shipml(
        "build",
        "--target",
        "train",
        "--extra",
        "azure",
        "--tag",
        "shipml-test/iris-train:az",
        "--base-image",
        base,
        cwd=project,
    )
    environment = {"SHIPML_STORE": azure, "AZURE_STORAGE_CONNECTION_STRING": CONNECTION}
    logs = client.containers.run(
        "shipml-test/iris-train:az", environment=environment, network_mode="host", remove=True
    ).decode()
    assert "Registered iris:1" in logs
    run_shipml(
        "build",
        "iris:1",
        "--extra",
        "azure",
        "--extra",
        "trust",
        "--tag",
        "shipml-test/iris:az",
        "--base-image",
        base,
        cwd=project,
    )
    port = free_port()
    container = client.containers.run(
        "shipml-test/iris:az",
        detach=True,
        network_mode="host",
        environment={
            **environment,
            "SHIPML_MODEL": "iris@latest",
            "SHIPML_PORT": str(port),
            "SHIPML_HOST": "127.0.0.1",
        },
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url)
        answer = httpx.post(f"{url}/predict", json=SEED_IRIS_RECORD, timeout=10).json()
        assert answer["label"] == "virginica"
        assert httpx.get(f"{url}/info").json()["ref"] == "iris:1"
        image = client.images.get("shipml-test/iris:az")
        assert KEY not in json.dumps(image.history()) and KEY not in json.dumps(image.attrs)
    finally:
        container.remove(force=True)
    # A second version, the production alias moved to it, the container restarted.
    run_shipml("train", cwd=project)
    run_shipml("models", "alias", "iris", "2", "production")
    container = client.containers.run(
        "shipml-test/iris:az",
        detach=True,
        network_mode="host",
        environment={
            **environment,
            "SHIPML_MODEL": "iris@production",
            "SHIPML_PORT": str(port),
            "SHIPML_HOST": "127.0.0.1",
        },
    )
    try:
        wait_until_ready(url)
        assert httpx.get(f"{url}/info").json()["version"] == 2
    finally:
        container.remove(force=True)
    # Trust on (the Azure extra brings cryptography; --extra trust names it): the unsigned
    # version is not served; once a trusted publisher signs it, the retrying service loads it.
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o755)
    secret, public = key_pair(keys, "release")
    public.chmod(0o644)  # the image runs as a non-root user
    container = client.containers.run(
        "shipml-test/iris:az",
        detach=True,
        network_mode="host",
        volumes={str(keys): {"bind": "/keys", "mode": "ro"}},
        environment={
            **environment,
            "SHIPML_MODEL": "iris@production",
            "SHIPML_TRUSTED_KEYS": "/keys/release.pub",
            "SHIPML_PORT": str(port),
            "SHIPML_HOST": "127.0.0.1",
        },
    )
    try:
        deadline = time.monotonic() + 60
        while b"no trusted key signed it" not in container.logs():
            assert time.monotonic() < deadline, container.logs().decode()
            time.sleep(0.2)
        assert httpx.get(f"{url}/health/ready").status_code == 503
        run_shipml("models", "sign", "iris:2", env={"SHIPML_SIGNING_KEY": str(secret)})
        wait_until_ready(url, timeout=90)
        assert httpx.get(f"{url}/info").json()["version"] == 2
    finally:
        container.remove(force=True)


def test_paths_and_names_that_lead_out_are_refused_on_azure_too(azure: str, tmp_path: Path) -> None:
    # The checks live above the backend: a crafted manifest in a blob container is
    # refused like one in a folder, and names typed on the command line never become
    # blob names outside models/<name>/.
    from shipml.store import Store

    store = Store(azure)
    write_version(store, "m", 1, {"../../../escaped.py": b"print('owned')\n"})
    cache = tmp_path / "cache"
    result = run_shipml("predict", "m:1", "-i", "{}", check=False, env={"SHIPML_CACHE": str(cache)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "names the file '../../../escaped.py', which goes up a folder" in result.stderr
    assert not (tmp_path / "escaped.py").exists() and not list(cache.rglob("*.py"))
    fs, root = store.backend.fs, store.backend.root  # type: ignore[attr-defined]
    container = root.split("/", 1)[0]
    before = sorted(fs.find(container))
    for args in (
        ["models", "alias", "../../outside", "1", "prod"],
        ["models", "alias", "m", "1", "../prod"],
        ["models", "list", "../m"],
    ):
        refused = run_shipml(*args, check=False)
        assert refused.returncode == 1 and "invalid" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert sorted(fs.find(container)) == before
    assert all(blob.startswith(f"{root}/") for blob in before)
