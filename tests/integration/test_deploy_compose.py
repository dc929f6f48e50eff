"""``shipml deploy compose`` with Debian's docker-compose: three replicas behind the
balancer, and a rolling update under a steady request loop that must not fail once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from tests.conftest import free_port
from tests.integration.deploy_support import (
    BASE,
    CHECKOUT,
    IMAGE_1,
    IMAGE_2,
    RequestLoop,
    build_images,
    deployment,
    predict,
    ready_url,
    remove_deployment,
    shipml,
    version,
)

pytestmark = pytest.mark.docker
NAME = f"shipml-test-deploy-compose-{CHECKOUT}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_images(tmp_path_factory.mktemp("deploy"))


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    remove_deployment(engine, NAME)


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


def compose(root: Path, image: str, port: int, *extra: str, check: bool = True) -> str:
    return shipml(
        root,
        *("deploy", "compose", image, "--replicas", "3", "--out", str(root / "compose")),
        *("--name", NAME, "--port", str(port), "--bind", "127.0.0.1", "--balancer-base", BASE),
        *extra,
        check=check,
    )


def models(client: docker.DockerClient) -> list[docker.models.containers.Container]:
    return sorted(
        (c for c in deployment(client, NAME) if c.labels["io.shipml.deploy.role"] == "model"),
        key=lambda c: c.name,
    )


def predictions_answered(container: docker.models.containers.Container) -> float:
    """The replica's own count of answered /predict requests, read from its /metrics."""
    read = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
    metrics = container.exec_run(["python3", "-c", read]).output.decode()
    counts = re.findall(
        r'^shipml_requests_total\{[^}]*route="/predict"[^}]*\} (\S+)$', metrics, re.M
    )
    return sum(float(count) for count in counts)


def test_the_file_stands_alone(root: Path, port: int) -> None:
    output = compose(root, IMAGE_1, port)
    assert "Wrote" in output, output
    document = yaml.safe_load((root / "compose" / "docker-compose.yml").read_text())
    model, front = document["services"]["model"], document["services"]["balancer"]
    assert model["image"] == IMAGE_1 and model["scale"] == 3
    assert model["healthcheck"]["test"] == ["CMD", "python3", "-m", "shipml.serving.probe"]
    assert front["depends_on"] == {"model": {"condition": "service_healthy"}}
    assert front["ports"] == [f"127.0.0.1:{port}:8080"] and front["build"] == "./balancer"
    dockerfile = (root / "compose" / "balancer" / "Dockerfile").read_text()
    assert f"FROM {BASE}" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "proxy_next_upstream" in (root / "compose" / "balancer" / "nginx.conf").read_text()


def test_three_replicas_answer_behind_the_balancer(
    root: Path, port: int, client: docker.DockerClient
) -> None:
    output = compose(root, IMAGE_1, port, "--up")
    assert "3 replica(s)" in output, output
    url = ready_url(output)
    replicas = models(client)
    assert len(replicas) == 3
    # Round robin, but nginx passes over a replica for a while when it was slow to accept
    # (a loaded machine): ask in rounds, at least 60 requests, until every replica has answered.
    deadline = time.monotonic() + 90
    asked = 0
    while asked < 60 or (
        time.monotonic() < deadline and not all(predictions_answered(c) > 0 for c in replicas)
    ):
        for _ in range(30):
            assert predict(url) == "virginica"
        asked += 30
    assert all(predictions_answered(c) > 0 for c in replicas), "every replica answers"
    assert version(url) == 1


def test_rolling_update_drops_no_request(
    root: Path, port: int, client: docker.DockerClient
) -> None:
    url = f"http://127.0.0.1:{port}"
    old = {c.id for c in models(client)}
    balancer = [
        c.id for c in deployment(client, NAME) if c.labels["io.shipml.deploy.role"] == "balancer"
    ]
    with RequestLoop(url) as loop:
        output = compose(root, IMAGE_2, port, "--up")
    assert "replaced 3" in output, output
    assert loop.failures == [], (loop.outcomes, loop.failures[:5])
    assert loop.total > 100, loop.outcomes
    assert version(url) == 2
    replicas = models(client)
    assert len(replicas) == 3 and not old & {c.id for c in replicas}
    assert all(c.image.tags == [IMAGE_2] for c in replicas)
    after = [
        c.id for c in deployment(client, NAME) if c.labels["io.shipml.deploy.role"] == "balancer"
    ]
    assert after == balancer, "the balancer is never restarted"
    assert IMAGE_2 in (root / "compose" / "docker-compose.yml").read_text()


def test_a_failed_rollout_keeps_the_old_replicas_and_file(
    root: Path, port: int, client: docker.DockerClient, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{port}"
    before = {c.id for c in models(client)}
    written = (root / "compose" / "docker-compose.yml").read_text()
    env = tmp_path / "bad.env"
    env.write_text(
        "# a worker count that is not a number: the replicas exit at once\nSHIPML_WORKERS=many\n"
    )
    output = compose(root, IMAGE_1, port, "--up", "--env-file", str(env), check=False)
    assert "SHIPML_WORKERS must be a whole number" in output and "is still serving" in output, (
        output
    )
    assert "Traceback" not in output
    assert {c.id for c in models(client)} == before
    assert (root / "compose" / "docker-compose.yml").read_text() == written
    assert version(url) == 2 and predict(url) == "virginica"


def test_remove(root: Path, port: int, client: docker.DockerClient) -> None:
    output = compose(root, IMAGE_2, port, "--remove")
    assert f"Removed {NAME}" in output, output
    assert deployment(client, NAME) == []
