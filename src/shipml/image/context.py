"""The build context of an image: wheelhouse, shipml runtime, model or project, Dockerfile.

Wheels are downloaded here, on the build host, for the base image's exact platform (its
Python version, glibc and architecture, read by running the base once), and cached by a
hash of the requirements and that platform: a rebuild with unchanged requirements does
not run pip at all, which is what makes a model-only rebuild take seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import shipml
from shipml.errors import ShipmlError
from shipml.image.requirements import package_name

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "templates", ".mypy_cache")
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


class BuildError(ShipmlError):
    code = "build_failed"


@dataclass(frozen=True)
class Platform:
    """What the base image runs: the wheels must match it, not the build host."""

    python: str  # "3.11"
    glibc: str  # "2.36"
    machine: str  # "x86_64"

    def pip_options(self) -> list[str]:
        """pip matches ``--platform`` literally, so list every tag this glibc can run."""
        newest = int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(newest, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.machine}" for minor, name in legacy.items() if minor <= newest]
        options = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for tag in tags:
            options += ["--platform", tag]
        return options


def cache_root() -> Path:
    return Path(os.environ.get("SHIPML_BUILD_CACHE") or Path.home() / ".cache" / "shipml" / "build")


def wheelhouse(
    requirements: list[str],
    platform: Platform,
    quiet: bool = True,
    no_deps: Collection[str] = (),
) -> Path:
    """A folder of wheels (and ``requirements.lock``) for ``requirements`` on ``platform``.

    Requirements whose package is in ``no_deps`` are downloaded alone, without the
    dependencies they declare (the image installs the lock with ``--no-deps``: the lock
    is the complete set).
    """
    alone = {package_name(name) for name in no_deps}
    parts: list[object] = [sorted(requirements), platform.__dict__]
    if alone:
        parts.append(sorted(alone))
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]
    folder = cache_root() / "wheels" / key
    if (folder / "requirements.lock").is_file():
        return folder
    # A staging folder per process: two builds of the same requirements at once (one cache,
    # two terminals or test workers) must not delete each other's half-downloaded wheels.
    staging = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    resolved = [line for line in requirements if package_name(line) not in alone]
    (staging / "requirements.in").write_text("\n".join(resolved) + "\n")
    _download(["-r", str(staging / "requirements.in")], staging, platform, quiet)
    for line in requirements:
        if package_name(line) in alone:
            _download(["--no-deps", line], staging, platform, quiet)
    pins = sorted(
        f"{m['name']}=={m['version']}"
        for wheel in staging.glob("*.whl")
        if (m := WHEEL_NAME.match(wheel.name))
    )
    (staging / "requirements.lock").write_text("\n".join(pins) + "\n")
    try:
        staging.rename(folder)
    except OSError:  # another build finished the same folder first: its wheels are the same
        if not (folder / "requirements.lock").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _download(what: list[str], staging: Path, platform: Platform, quiet: bool) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--dest",
        str(staging),
        *what,
        *platform.pip_options(),
    ]
    result = subprocess.run(command, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-6:] if quiet else []
        raise BuildError(
            "could not download wheels for the image (Python "
            f"{platform.python}, {platform.machine}, glibc {platform.glibc}):\n  "
            + "\n  ".join(line for line in detail if "WARNING: Location" not in line)
            + "\nCheck the package names and versions in the environment file; every "
            "package must publish a wheel for this platform."
        )


def locked_version(lock: Path, package: str) -> str | None:
    """The version of ``package`` pinned in a ``requirements.lock``."""
    wanted = package_name(package)
    for line in lock.read_text().splitlines():
        name, _, version = line.partition("==")
        if package_name(name) == wanted:
            return version
    return None


def copy_runtime(target: Path) -> None:
    """shipml's own package, without templates or caches (the image imports it as is)."""
    shutil.copytree(Path(shipml.__file__).parent, target / "shipml", ignore=IGNORE)


def copy_wheels(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.suffix == ".whl" or path.name == "requirements.lock":
            os.link(path, target / path.name) if _same_device(path, target) else shutil.copy2(
                path, target / path.name
            )


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
