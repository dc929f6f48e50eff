"""Measure the iris serve image: size, cold build, model-only rebuild, start -> ready.

    python bench/image_bench.py [BASE_IMAGE]     (make bench-image)

Needs a Docker engine and the base image (scripts/docker-engine.sh, scripts/base-image.sh).
"Cold" means no wheel cache and no layer cache (a first build on a machine); the wheels
then come from PyPI, so that number includes the network. Prints a Markdown table.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import httpx

REPO = Path(__file__).resolve().parents[1]
SHIPML = str(Path(sys.executable).with_name("shipml"))


def shipml(*args: str, env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run([SHIPML, *args], cwd=cwd, env=env, check=True, capture_output=True)
    return time.monotonic() - started


def start_to_ready(client: docker.DockerClient, image: str) -> float:
    started = time.monotonic()
    container = client.containers.run(image, detach=True, ports={"8000/tcp": ("127.0.0.1", None)})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    finally:
        container.remove(force=True)


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "shipml-test/python:3.11-slim"
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        project = root / "iris"
        shutil.copytree(REPO / "examples" / "iris", project)
        env = {
            **os.environ,
            "SHIPML_STORE": str(root / "store"),
            "SHIPML_CACHE": str(root / "c"),
            "SHIPML_BUILD_CACHE": str(root / "build-cache"),
        }
        shipml("train", env=env, cwd=project)
        cold = shipml(
            "build",
            "iris:1",
            "--tag",
            "shipml-bench/iris:1",
            "--base-image",
            base,
            "--no-cache",
            env=env,
            cwd=project,
        )
        shipml("train", env=env, cwd=project)
        rebuild = shipml(
            "build",
            "iris:2",
            "--tag",
            "shipml-bench/iris:2",
            "--base-image",
            base,
            env=env,
            cwd=project,
        )
    size = client.images.get("shipml-bench/iris:2").attrs["Size"]
    base_size = client.images.get(base).attrs["Size"]
    ready = [start_to_ready(client, "shipml-bench/iris:2") for _ in range(5)]
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| iris serve image size | {size / 1e6:.0f} MB | ≤ 250 MB |")
    above = (size - base_size) / 1e6
    print(f"| … above the base image ({base_size / 1e6:.0f} MB) | {above:.0f} MB | |")
    print(f"| cold build (no wheel or layer cache; includes the smoke test) | {cold:.0f} s | |")
    print(
        f"| model-only rebuild (new version; includes the smoke test) | {rebuild:.1f} s | ≤ 10 s |"
    )
    print(
        f"| container start → ready (median of 5; min–max) | {statistics.median(ready):.2f} s "
        f"({min(ready):.2f}–{max(ready):.2f}) | ≤ 2 s |"
    )


if __name__ == "__main__":
    main()
