"""Deploy pieces that need no engine: names, env files, the Compose file, the balancer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shipml.deploy import balancer, naming
from shipml.deploy.naming import DeployError
from shipml.deploy.targets import compose
from shipml.deploy.targets.docker import _url


def test_the_name_comes_from_the_model_label_then_the_repository() -> None:
    labels = {naming.MODEL_NAME: "Sentiment.v2"}
    assert naming.deployment_name(None, "reg.io/x/sentiment:3", labels) == "sentiment-v2"
    assert naming.deployment_name(None, "127.0.0.1:5000/team/iris:7", None) == "iris"
    assert naming.deployment_name("prod_iris", "iris:1", labels) == "prod_iris"


def test_a_bad_name_says_what_a_good_one_is() -> None:
    with pytest.raises(DeployError, match="lower-case letters, digits"):
        naming.deployment_name("Prod Iris", "iris:1", None)


def test_env_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "prod.env"
    path.write_text("# comment\nSHIPML_WORKERS=2\nA=b=c\n\n")
    assert naming.read_env(path, ["SHIPML_WORKERS=4", "X="]) == {
        "SHIPML_WORKERS": "4",
        "A": "b=c",
        "X": "",
    }
    with pytest.raises(DeployError, match="no such file"):
        naming.read_env(tmp_path / "missing.env", None)
    with pytest.raises(DeployError, match="KEY=VALUE"):
        naming.read_env(None, ["NOVALUE"])
    path.write_text("JUSTAKEY\n")
    with pytest.raises(DeployError, match="KEY=VALUE"):
        naming.read_env(path, None)


def test_compose_file(tmp_path: Path) -> None:
    env = tmp_path / "prod.env"
    env.write_text("A=1\n")
    spec = compose.Resolved(
        image="iris:2", replicas=3, out=tmp_path / "out", port=9000, env_file=env
    )
    path = compose.write(spec, "iris")
    document = yaml.safe_load(path.read_text())
    assert document["version"] == "2.4"
    model, front = document["services"]["model"], document["services"]["balancer"]
    assert model["scale"] == 3 and model["env_file"] == [str(env.resolve())]
    assert model["labels"][naming.DEPLOY] == "iris"
    assert front["ports"] == ["0.0.0.0:9000:8080"]
    assert front["image"] == balancer.image_tag(balancer.DEFAULT_BASE)
    assert sorted(p.name for p in (tmp_path / "out" / "balancer").iterdir()) == [
        "Dockerfile",
        "install.sh",
        "nginx.conf",
    ]


def test_compose_refuses_zero_replicas(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="at least 1"):
        compose.write(compose.Resolved(image="x", replicas=0, out=tmp_path), "x")


def test_balancer_tag_follows_its_content() -> None:
    assert balancer.image_tag("debian:bookworm-slim") == balancer.image_tag("debian:bookworm-slim")
    assert balancer.image_tag("debian:bookworm-slim") != balancer.image_tag("nginx:1.27-alpine")
    assert "FROM nginx:1.27-alpine" in balancer.dockerfile("nginx:1.27-alpine")


def test_urls_name_the_host_users_reach() -> None:
    assert _url("ssh://deploy@vm.example.com:2222", "0.0.0.0", 8080) == "http://vm.example.com:8080"
    assert _url(None, "0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert _url(None, "10.1.2.3", 80) == "http://10.1.2.3:80"
