"""Shared by the deploy tests: serve images built once, the test sshd, a request loop."""

from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import docker
import httpx

from tests.conftest import BUILD_CACHE, REPO, SEED_IRIS_RECORD, run_shipml

BASE = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
SSHD_PORT = int(os.environ.get("SHIPML_TEST_SSHD_PORT", "2222"))
SSHD_DIR = Path(os.environ.get("SHIPML_TEST_SSHD_DIR", "/tmp/shipml-sshd"))
# Deployment names carry the checkout's own suffix: suites of two checkouts on one Docker
# engine (helpers' worktrees) must not take each other's containers for strangers'.
CHECKOUT = hashlib.sha256(str(REPO).encode()).hexdigest()[:6]
IMAGE_1 = "shipml-test-deploy/iris:1"
IMAGE_2 = "shipml-test-deploy/iris:2"
_built: dict[str, Path] = {}
_lock = threading.Lock()


def shipml(root: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run the CLI with the deploy tests' isolated store, cache and home."""
    result = run_shipml(*args, cwd=root, check=check, env={**_env(root), **(env or {})})
    return result.stdout + result.stderr


def build_images(root: Path) -> Path:
    """Train iris twice and build ``IMAGE_1`` and ``IMAGE_2`` (once per session)."""
    with _lock:
        if "root" in _built:
            return _built["root"]
        project = root / "iris"
        shutil.copytree(REPO / "examples" / "iris", project)
        (root / "home").mkdir(exist_ok=True)
        for version, tag in ((1, IMAGE_1), (2, IMAGE_2)):
            run_shipml("train", cwd=project, env=_env(root))
            output = shipml(root, "build", f"iris:{version}", "--tag", tag, "--base-image", BASE)
            assert f"Built {tag}" in output, output
        _built["root"] = root
        return root


def _env(root: Path) -> dict[str, str]:
    return {
        "SHIPML_STORE": str(root / "store"),
        "SHIPML_CACHE": str(root / "cache"),
        "SHIPML_BUILD_CACHE": BUILD_CACHE,
        "HOME": str(root / "home"),
    }


def start_sshd() -> None:
    subprocess.run([str(REPO / "scripts" / "sshd.sh"), str(SSHD_PORT)], check=True, timeout=300)


def ssh_home(folder: Path) -> Path:
    """A HOME whose ~/.ssh holds the test client key and trusts the test host key."""
    dot = folder / ".ssh"
    dot.mkdir(parents=True, exist_ok=True)
    shutil.copy(SSHD_DIR / "client_key", dot / "id_ed25519")
    shutil.copy(SSHD_DIR / "known_hosts", dot / "known_hosts")
    (dot / "id_ed25519").chmod(0o600)
    return folder


def ready_url(output: str) -> str:
    found = re.search(r"Ready at (http://\S+?)/", output)
    assert found, output
    return found.group(1)


def version(url: str) -> int:
    answer = httpx.get(f"{url}/info", timeout=10)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["version"])


def predict(url: str) -> str:
    answer = httpx.post(f"{url}/predict", json=SEED_IRIS_RECORD, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["label"])


def deployment(client: docker.DockerClient, name: str) -> list[docker.models.containers.Container]:
    return list(client.containers.list(all=True, filters={"label": f"io.shipml.deploy={name}"}))


def remove_deployment(client: docker.DockerClient, name: str) -> None:
    """Clean up after a test: only what carries this deployment's label."""
    for container in deployment(client, name):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": f"io.shipml.deploy={name}"}):
        network.remove()
    for network in client.networks.list(names=[f"{name}_default"]):
        network.remove()


class RequestLoop:
    """POST /predict back to back on one keep-alive connection, in a thread.

    Bounded: at most ``limit`` requests and ``seconds`` of time, to 127.0.0.1 only; a
    short pause between requests keeps it steady rather than a CPU-bound flood, so the
    replicas being replaced start at their usual pace.
    """

    def __init__(self, url: str, seconds: float = 240, limit: int = 20_000) -> None:
        assert url.startswith("http://127.0.0.1:"), url
        self.url, self.seconds, self.limit = url, seconds, limit
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        while sum(self.outcomes.values()) < 20 and self._thread.is_alive():
            time.sleep(0.05)  # the loop is up and answered before the update begins
        return self

    def __exit__(self, *exc: object) -> None:
        # keep asking a little after the update returned: 20 more answers, however slow
        # the machine (a fixed pause may see none on a loaded one)
        after = self.total + 20
        deadline = time.monotonic() + 60
        while self.total < after and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for _ in range(self.limit):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    answer = client.post("/predict", json=SEED_IRIS_RECORD)
                    self.outcomes[str(answer.status_code)] += 1
                    if answer.status_code != 200:
                        self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    self.outcomes[type(exc).__name__] += 1
                    self.failures.append(repr(exc))
                time.sleep(0.005)
