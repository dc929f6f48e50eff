"""Deployment files against real images on the real engine: labels are read from the
image, and a serve image really runs the way the generated Deployment runs it."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml

from tests.conftest import SEED_IRIS_RECORD, run_shipml, wait_until_ready

pytestmark = pytest.mark.docker
BASE = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
PREFIX = "shipml-test-manifests"  # distinct: other helpers use shipml-test-deploy-*
CREATED: list[str] = []  # image tags this module made, and only those are removed
DIGEST = "sha256:" + "c" * 64


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    for tag in CREATED:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(tag)
    engine.close()


def labelled_image(client: docker.DockerClient, tag: str, labels: dict[str, str]) -> str:
    """A small image carrying the given labels (made from the stand-in base, offline)."""
    lines = [f"FROM {BASE}", *(f'LABEL "{k}"="{v}"' for k, v in labels.items()), "EXPOSE 9000"]
    client.images.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=tag, rm=True)
    CREATED.append(tag)
    return tag


def test_manifests_read_the_model_from_the_image_labels(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    image = labelled_image(
        client,
        f"{PREFIX}/labels:1",
        {
            "io.shipml.target": "serve",
            "io.shipml.model.name": "churn_model",
            "io.shipml.model.version": "7",
            "io.shipml.model.digest": DIGEST,
        },
    )
    run_shipml("deploy", "kubernetes", image, "--out", str(tmp_path / "k8s"))
    deployment = yaml.safe_load((tmp_path / "k8s" / "deployment.yaml").read_text())
    assert deployment["metadata"]["name"] == "churn-model"
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "7"
    assert template["metadata"]["annotations"]["shipml.io/model"] == "churn_model:7"
    assert template["metadata"]["annotations"]["shipml.io/model-digest"] == DIGEST
    assert template["spec"]["containers"][0]["ports"][0]["containerPort"] == 9000  # EXPOSE
    flags = ("--model-version", "8", "--port", "8080")
    run_shipml("deploy", "kubernetes", image, "--out", str(tmp_path / "k8s"), *flags)
    deployment = yaml.safe_load((tmp_path / "k8s" / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "8"
    assert template["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    aci = tmp_path / "aci.yaml"
    run_shipml(
        "deploy", "aci", image, "--resource-group", "rg", "--name", "churn", "--out", str(aci)
    )
    group = yaml.safe_load(aci.read_text())
    assert group["tags"]["shipml-model"] == "churn_model:7"
    assert group["properties"]["ipAddress"]["ports"] == [{"port": 9000, "protocol": "TCP"}]


def test_images_without_a_model_are_refused_clearly(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    train = labelled_image(
        client, f"{PREFIX}/train:1", {"io.shipml.target": "train", "io.shipml.model.name": "x"}
    )
    for image, message in (
        (train, "is a train image; deploy a serve image"),
        (BASE, "has no shipml model labels"),
        (f"{PREFIX}/absent:1", f"no image {PREFIX}/absent:1 in the local engine"),
    ):
        result = run_shipml(
            "deploy", "kubernetes", image, "--out", str(tmp_path / "k"), check=False
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert message in result.stderr, result.stderr
    assert not (tmp_path / "k").exists()


@pytest.fixture(scope="module")
def serve_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real iris serve image built by shipml (model baked in)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import shipml
    from tests.conftest import IRIS_FEATURES

    store = tmp_path_factory.mktemp("deploy-store")
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPML_STORE", str(store))
        shipml.save_model(model, training_data=data.data, feature_names=IRIS_FEATURES, name="iris")
    tag = f"{PREFIX}/iris:1"
    run_shipml("build", "iris:1", "--tag", tag, "--base-image", BASE, "--store", str(store))
    CREATED.append(tag)
    return tag


def container_args(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the kubelet would do with the pod spec, as Docker SDK arguments."""
    pod = deployment["spec"]["template"]["spec"]
    spec = pod["containers"][0]
    security = spec["securityContext"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    user = pod["securityContext"]
    return {
        "environment": {item["name"]: item["value"] for item in spec["env"]},
        "read_only": security["readOnlyRootFilesystem"],
        "cap_drop": security["capabilities"]["drop"],
        "security_opt": [] if security["allowPrivilegeEscalation"] else ["no-new-privileges"],
        "user": f"{user['runAsUser']}:{user['runAsGroup']}",
        "tmpfs": {"/tmp": f"size={tmp['emptyDir']['sizeLimit'].replace('Mi', 'm')}"},
    }


def test_the_pod_spec_really_runs_the_serve_image(
    client: docker.DockerClient, serve_image: str, tmp_path: Path
) -> None:
    """Read-only root, no capabilities, uid 10001, /tmp as the only writable place, API
    keys from the mounted Secret file: ready, answers, drains on SIGTERM in time."""
    out = tmp_path / "k8s"
    run_shipml(
        "deploy", "kubernetes", serve_image, "--out", str(out), "--api-keys-secret", "iris-keys"
    )
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    spec = pod["containers"][0]
    mount = next(m for m in spec["volumeMounts"] if m["name"] == "api-keys")
    keys = tmp_path / "api-keys"
    keys.write_text("first-key\nsecond-key\n")
    keys.chmod(0o644)
    container = client.containers.run(
        serve_image,
        detach=True,
        name=f"{PREFIX}-pod",
        ports={f"{spec['ports'][0]['containerPort']}/tcp": ("127.0.0.1", None)},
        volumes={str(keys): {"bind": f"{mount['mountPath']}/api-keys", "mode": "ro"}},
        **container_args(deployment),
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, 60, lambda: container.reload() or container.status == "running")
        assert httpx.get(f"{url}{spec['livenessProbe']['httpGet']['path']}").status_code == 200
        refused = httpx.post(f"{url}/predict", json=SEED_IRIS_RECORD)
        assert refused.status_code == 401
        answer = httpx.post(
            f"{url}/predict", json=SEED_IRIS_RECORD, headers={"X-API-Key": "second-key"}
        )
        assert answer.status_code == 200 and answer.json()["label"] == "virginica"
        pre_stop = container.exec_run(spec["lifecycle"]["preStop"]["exec"]["command"])
        assert pre_stop.exit_code == 0, pre_stop.output
        grace = pod["terminationGracePeriodSeconds"]
        started = time.monotonic()
        container.stop(timeout=grace)
        assert time.monotonic() - started < grace
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0  # drained, not killed
    finally:
        container.remove(force=True)


def test_without_the_tmp_volume_the_server_uses_dev_shm_and_without_both_says_so(
    client: docker.DockerClient, serve_image: str, tmp_path: Path
) -> None:
    """The Deployment mounts a sized emptyDir on /tmp. A read-only root without it still
    serves, from the container's /dev/shm; with no /dev/shm either (``--ipc none``) the
    server stops with one line saying what to mount."""
    out = tmp_path / "k8s"
    run_shipml("deploy", "kubernetes", serve_image, "--out", str(out))
    args = container_args(yaml.safe_load((out / "deployment.yaml").read_text()))
    del args["tmpfs"]
    container = client.containers.run(serve_image, detach=True, name=f"{PREFIX}-no-tmp", **args)
    try:
        deadline = time.monotonic() + 60
        while b"ready and listening" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = container.logs()
        assert b"ready and listening" in logs and b"temporary files: /dev/shm" in logs, logs
    finally:
        container.remove(force=True)
    bare = client.containers.run(
        serve_image, detach=True, name=f"{PREFIX}-no-shm", ipc_mode="none", **args
    )
    try:
        assert bare.wait(timeout=60)["StatusCode"] != 0
        logs = bare.logs()
        assert b"no writable temporary folder" in logs and b"Traceback" not in logs, logs
    finally:
        bare.remove(force=True)
