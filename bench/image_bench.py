"""Measure the iris serve image: size against its floor, compressed size, cold build,
model-only rebuild, start -> ready; and the same version built with ``--onnx`` (ONNX
Runtime in the image instead of scikit-learn): its size and start -> ready.

The floor is what no serve image of this model can go under: the base image plus the
model's own packages (the libraries its manifest records, scikit-learn and what it
needs, installed by pip as a user would), built here and measured the same way.

    python bench/image_bench.py [BASE_IMAGE]     (make bench-image)

Needs a Docker engine and the base image (scripts/docker-engine.sh, scripts/base-image.sh).
"Cold" means no wheel cache and no layer cache (a first build on a machine); the wheels
then come from PyPI, so that number includes the network. Prints a Markdown table.
"""

from __future__ import annotations

import json
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


FLOOR_DOCKERFILE = """FROM {base} AS deps
COPY wheels/ /tmp/wheels/
RUN python3 -m pip install --no-index --disable-pip-version-check --find-links /tmp/wheels \\
      --target /opt/floor {requirements}
FROM {base}
ENV PYTHONPATH=/opt/floor
COPY --from=deps /opt/floor /opt/floor
"""


def floor_image(client: docker.DockerClient, base: str, libraries: dict[str, str]) -> str:
    """Base + the model's own packages (pinned as trained), wheels fetched on the host."""
    tag = "shipml-bench/iris-floor:1"
    requirements = [f"{name}=={version}" for name, version in sorted(libraries.items())]
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
             "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
             "--dest", str(context / "wheels"), *requirements],
            check=True,
        )  # fmt: skip
        (context / "Dockerfile").write_text(
            FLOOR_DOCKERFILE.format(base=base, requirements=" ".join(requirements))
        )
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    return tag


def compressed_size(image: str) -> int:
    """Bytes of ``docker save IMAGE | gzip``: about what a registry stores and a node pulls."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    gzip = subprocess.run(["gzip", "-6", "-c"], stdin=save.stdout, capture_output=True, check=True)
    save.wait()
    return len(gzip.stdout)


# Recorded in every manifest when installed, but not what this model's own code needs.
NOT_ITS_OWN = {"python", "onnxruntime", "skl2onnx"}


def model_libraries(env: dict[str, str]) -> dict[str, str]:
    """The packages the iris version's manifest records (what its own code needs)."""
    code = (
        f"NOT_ITS_OWN = {sorted(NOT_ITS_OWN)!r};"
        "import json; from shipml.store import Store, parse_reference;"
        "m = Store().fetch(parse_reference('iris:2')).manifest;"
        "print(json.dumps({k: v for k, v in m.libraries.items() if k not in NOT_ITS_OWN}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    libraries: dict[str, str] = json.loads(done.stdout)
    return libraries


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
        onnx_build = shipml(
            "build",
            "iris:2",
            "--onnx",
            "--tag",
            "shipml-bench/iris-onnx:2",
            "--base-image",
            base,
            env=env,
            cwd=project,
        )
        libraries = model_libraries(env)
    size = client.images.get("shipml-bench/iris:2").attrs["Size"]
    onnx_size = client.images.get("shipml-bench/iris-onnx:2").attrs["Size"]
    base_size = client.images.get(base).attrs["Size"]
    floor = client.images.get(floor_image(client, base, libraries)).attrs["Size"]
    packed = compressed_size("shipml-bench/iris:2")
    ready = [start_to_ready(client, "shipml-bench/iris:2") for _ in range(5)]
    onnx_ready = [start_to_ready(client, "shipml-bench/iris-onnx:2") for _ in range(5)]
    print("| measure | value | target |")
    print("|---|---|---|")
    ratio = size / floor
    verdict = "**met**" if ratio <= 1.25 else "**missed**"
    print(
        f"| floor: base + the model's packages ({', '.join(libraries)}) | {floor / 1e6:.0f} MB | |"
    )
    print(f"| iris serve image size | {size / 1e6:.0f} MB | |")
    print(f"| … ÷ its floor | {ratio:.2f} | ≤ 1.25 — {verdict} |")
    print(f"| … compressed (docker save, gzip -6) | {packed / 1e6:.0f} MB | |")
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
    print(f"| `--onnx` image of the same version: size | {onnx_size / 1e6:.0f} MB | |")
    print(f"| … its build (the conversion and its check included) | {onnx_build:.1f} s | |")
    median = statistics.median(onnx_ready)
    print(
        f"| … container start → ready (median of 5; min–max) | {median:.2f} s "
        f"({min(onnx_ready):.2f}–{max(onnx_ready):.2f}) | ≤ 1.0 s (issue 16) |"
    )


if __name__ == "__main__":
    main()
