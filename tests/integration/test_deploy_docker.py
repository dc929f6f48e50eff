"""``shipml deploy docker`` on a "remote" engine: this machine's, reached through a real
sshd on 127.0.0.1 (scripts/sshd.sh) with key auth, via Docker's SSH transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import free_port
from tests.integration.deploy_support import (
    BASE,
    CHECKOUT,
    IMAGE_1,
    IMAGE_2,
    SSHD_PORT,
    RequestLoop,
    build_images,
    deployment,
    predict,
    ready_url,
    remove_deployment,
    shipml,
    ssh_home,
    start_sshd,
    version,
)

pytestmark = pytest.mark.docker
NAME = f"shipml-test-deploy-ssh-{CHECKOUT}"
HOST = f"ssh://root@127.0.0.1:{SSHD_PORT}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    start_sshd()
    built = build_images(tmp_path_factory.mktemp("deploy"))
    ssh_home(built / "home")
    return built


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    for name in (NAME, f"{NAME}-port", f"{NAME}-bad"):
        remove_deployment(engine, name)


@pytest.fixture(scope="module")
def url(root: Path, client: docker.DockerClient) -> str:
    """The deployment, first made over SSH; the tests below redeploy and break it."""
    output = shipml(
        root,
        *("deploy", "docker", IMAGE_1, "--host", HOST, "--name", NAME),
        *("--port", str(free_port()), "--bind", "127.0.0.1", "--balancer-base", BASE),
    )
    assert "Deployed" in output and "1 replica(s)" in output, output
    return ready_url(output)


def deploy(root: Path, image: str, *extra: str, check: bool = True) -> str:
    return shipml(
        root,
        *("deploy", "docker", image, "--host", HOST, "--name", NAME, *extra),
        check=check,
    )


def test_deploys_over_ssh_and_answers(url: str, client: docker.DockerClient) -> None:
    assert predict(url) == "virginica"
    assert version(url) == 1
    parts = {c.labels["io.shipml.deploy.role"]: c for c in deployment(client, NAME)}
    assert set(parts) == {"balancer", "model"}
    for container in parts.values():
        assert container.status == "running"
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert parts["model"].name == f"{NAME}-model-1-1"
    assert not parts["model"].attrs["HostConfig"]["PortBindings"], "only the balancer publishes"


def test_redeploy_replaces_the_old_container_only_once_the_new_is_ready(
    root: Path, url: str, client: docker.DockerClient
) -> None:
    with RequestLoop(url) as loop:
        output = deploy(root, IMAGE_2)
    assert "replaced 1" in output, output
    assert loop.failures == [], (loop.outcomes, loop.failures[:5])
    assert loop.total > 50, loop.outcomes
    assert version(url) == 2
    models = [c for c in deployment(client, NAME) if c.labels["io.shipml.deploy.role"] == "model"]
    assert [c.name for c in models] == [f"{NAME}-model-2-1"]
    assert models[0].image.tags == [IMAGE_2]


def test_a_replica_that_never_gets_ready_leaves_the_old_one_serving(
    root: Path, url: str, client: docker.DockerClient
) -> None:
    before = {c.id for c in deployment(client, NAME)}
    # A model that is not in the (absent) store: the service runs but never gets ready.
    output = deploy(root, IMAGE_1, "-e", "SHIPML_MODEL=missing:1", "--timeout", "15", check=False)
    assert "was not ready after 15s" in output and "model not loaded" in output, output
    assert "is still serving" in output and "Traceback" not in output, output
    assert {c.id for c in deployment(client, NAME)} == before
    assert version(url) == 2 and predict(url) == "virginica"


def test_a_replica_that_crashes_shows_its_log(root: Path, url: str) -> None:
    output = deploy(root, IMAGE_1, "-e", "SHIPML_WORKERS=many", check=False)
    assert "stopped before it was ready" in output, output
    assert "SHIPML_WORKERS must be a whole number" in output, output
    assert version(url) == 2


def test_an_image_missing_on_the_remote_engine_says_push_it(root: Path) -> None:
    # A name on the local test registry: the engine tries it and fails, nothing leaves
    # this machine.
    output = deploy(root, "127.0.0.1:5000/shipml-test-deploy/absent:9", check=False)
    assert "is not on ssh://root@127.0.0.1" in output and "shipml push" in output, output
    assert "Traceback" not in output


def test_ssh_problems_say_what_to_do(root: Path, tmp_path: Path) -> None:
    stranger = shipml(
        root,
        "deploy",
        "docker",
        IMAGE_1,
        "--host",
        HOST,
        check=False,
        env={"HOME": str(tmp_path)},
    )
    assert "not found in known_hosts" in stranger and "ssh-keyscan" in stranger, stranger
    closed = free_port()
    refused = shipml(
        root,
        "deploy",
        "docker",
        IMAGE_1,
        "--host",
        f"ssh://root@127.0.0.1:{closed}",
        check=False,
    )
    assert "cannot reach 127.0.0.1" in refused and f"ssh -p {closed}" in refused, refused
    assert "Traceback" not in stranger + refused


def test_a_taken_port_is_reported_and_nothing_is_left(
    root: Path, url: str, client: docker.DockerClient
) -> None:
    taken = url.rsplit(":", 1)[1]
    output = shipml(
        root,
        *("deploy", "docker", IMAGE_1, "--name", f"{NAME}-port", "--port", taken),
        *("--bind", "127.0.0.1", "--balancer-base", BASE),
        check=False,
    )
    assert f"port {taken} is already taken" in output and "--port" in output, output
    assert deployment(client, f"{NAME}-port") == []
    assert client.networks.list(names=[f"{NAME}-port"]) == []


def test_remove_takes_everything_away(root: Path, url: str, client: docker.DockerClient) -> None:
    output = shipml(root, "deploy", "docker", "--remove", "--name", NAME, "--host", HOST)
    assert f"{NAME}-balancer" in output and f"network {NAME}" in output, output
    assert deployment(client, NAME) == []
    again = shipml(root, "deploy", "docker", "--remove", "--name", NAME, check=False)
    assert f"no deployment named {NAME!r}" in again
