"""Which Python packages an image gets: the model's environment plus the shipml runtime.

The runtime is pinned to the versions installed here, so an image runs the code that
was tested with it. The model's own packages (its flavour's library, what its files
refer to, pandas for a model fitted on a DataFrame; see
:func:`shipml.flavours.image_packages`) are pinned to the versions it was trained with
unless the project pins them itself, and installed the way their flavour says: a
package marked ``no_deps`` is downloaded without the dependencies it declares, its
``needs`` instead (XGBoost's Linux wheel declares NVIDIA's NCCL, ~200 MB that a CPU
image never loads). A conda ``environment.yml`` maps onto wheels: its ``dependencies``
(``name=version`` becomes ``name==version``) and its ``pip:`` section; packages that
only conda provides are named in the error with the way out.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from shipml import flavours
from shipml.errors import ProjectError
from shipml.scoring.azureml import script_packages
from shipml.store import Manifest

# What ``python -m shipml.serving`` imports: no CLI, no Docker client, no HTTP client.
RUNTIME = (
    "numpy",
    "joblib",
    "orjson",
    "pyyaml",
    "fsspec",
    "uvicorn",
    "uvloop",
    "httptools",
    "uvicorn-worker",
    "gunicorn",
    "prometheus-client",
    "packaging",
    "threadpoolctl",  # serving/sizing.py caps the native thread pools at worker start
    "cloudpickle",  # unpickles a model's own code, stored inside it (flavours/pickling.py)
)
# conda package names whose PyPI name differs.
CONDA_TO_PYPI = {"pytorch": "torch", "py-xgboost": "xgboost", "pyyaml": "pyyaml"}
# Packages of a conda environment that are the interpreter or its tooling, not libraries.
CONDA_SKIP = {
    "python",
    "pip",
    "setuptools",
    "wheel",
    "_libgcc_mutex",
    "_openmp_mutex",
    "ca-certificates",
    "openssl",
    "libgcc-ng",
    "libstdcxx-ng",
    "ld_impl_linux-64",
}
CONDA_ONLY = {
    "cudatoolkit",
    "mkl",
    "mkl-service",
    "libblas",
    "liblapack",
    "blas",
    "cudnn",
    "nccl",
    "r-base",
    "libgfortran-ng",
    "openblas",
    "tbb",
    "intel-openmp",
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def package_name(requirement: str) -> str:
    """The normalised name of a requirement (``Scikit_Learn>=1`` → ``scikit-learn``)."""
    found = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else requirement.lower()


def runtime_requirements() -> list[str]:
    pins = []
    for name in RUNTIME:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _pinned(package: str) -> str:
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def onnx_requirements() -> list[str]:
    """What an image serving an ONNX conversion needs: the runtime and onnxruntime, pinned
    to the version the conversion was checked with. Not scikit-learn, not scipy, nothing
    from the environment file: the graph needs none of them."""
    try:
        version = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        raise ProjectError("--onnx needs onnxruntime here: pip install 'shipml[onnx]'") from None
    return [*runtime_requirements(), f"onnxruntime=={version}"]


def environment_requirements(path: Path) -> list[str]:
    """The pip requirements an environment file stands for."""
    if path.suffix == ".txt":
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        return [line for line in lines if line and not line.startswith("-")]
    return conda_requirements(path)


def conda_requirements(path: Path) -> list[str]:
    try:
        spec: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from exc
    dependencies = spec.get("dependencies") if isinstance(spec, dict) else None
    if not isinstance(dependencies, list):
        raise ProjectError(f"{path}: key 'dependencies' must be a list of packages")
    requirements: list[str] = []
    conda_only: list[str] = []
    for entry in dependencies:
        if isinstance(entry, dict) and "pip" in entry:
            requirements += [str(item) for item in entry["pip"]]
            continue
        if not isinstance(entry, str):
            raise ProjectError(f"{path}: cannot read dependency {entry!r}")
        name, constraint = _conda_spec(entry.split("::", 1)[-1].strip())
        if name in CONDA_SKIP:
            continue
        if name in CONDA_ONLY:
            conda_only.append(name)
            continue
        requirements.append(CONDA_TO_PYPI.get(name, name) + constraint)
    if conda_only:
        raise ProjectError(
            f"{path} lists packages that only conda provides: {', '.join(conda_only)}. "
            "Images install wheels from PyPI: drop them (the wheels of numpy, scipy and torch "
            "bring their own BLAS and CUDA libraries) or move the project to a requirements.txt"
        )
    return requirements


def _conda_spec(text: str) -> tuple[str, str]:
    """``numpy=1.26`` → ``("numpy", "==1.26.*")``; ``==`` is exact; a build string is dropped."""
    found = re.match(r"^([A-Za-z0-9._-]+)\s*(.*)$", text)
    if not found:
        raise ProjectError(f"cannot read the conda dependency {text!r}")
    name, constraint = found.group(1).lower(), found.group(2).replace(" ", "")
    if constraint.startswith("=") and not constraint.startswith("=="):
        version = constraint[1:].split("=", 1)[0].removesuffix("*").removesuffix(".")
        constraint = f"=={version}.*"
    elif constraint.startswith("=="):
        constraint = "==" + constraint[2:].split("=", 1)[0]
    return name, constraint


# Optional store clients an image can carry (``shipml build --extra azure``); ``trust``
# checks publisher signatures of versions fetched at start (SHIPML_TRUSTED_KEYS).
EXTRAS = {"azure": ["adlfs"], "trust": ["cryptography"]}


def extra_requirements(extras: list[str]) -> list[str]:
    unknown = [name for name in extras if name not in EXTRAS]
    if unknown:
        raise ProjectError(f"unknown extra {unknown[0]!r}; choose from: {', '.join(EXTRAS)}")
    return [pin for name in extras for pin in EXTRAS[name]]


def image_requirements(
    manifest: Manifest, environment: Path | None, script: Path | None = None
) -> list[str]:
    """The full requirement list of a model's image, one line per package.

    ``script`` is a ``score.py``: what its imports need beyond the project's own
    requirements (inference-schema, werkzeug) is added, pinned to the version here.
    """
    own = (
        environment_requirements(environment)
        if environment
        else list(manifest.environment.get("requirements", []))
    )
    named = {package_name(line) for line in own}
    if script is not None:
        for needed in script_packages(script):
            if needed not in named:
                own.append(_pinned(needed))
                named.add(needed)
    packages = flavours.image_packages(manifest)
    for package in packages:
        if package.name not in named and package.name != "builtins":
            own.append(f"{package.name}=={package.version}" if package.version else package.name)
            named.add(package.name)
    for need in (need for package in packages for need in package.needs):
        if package_name(need) not in named:
            own.append(need)
            named.add(package_name(need))
    runtime = [pin for pin in runtime_requirements() if package_name(pin) not in named]
    return own + runtime


def no_deps_packages(manifest: Manifest) -> list[str]:
    """Packages of the image to download without their declared dependencies."""
    return [p.name for p in flavours.image_packages(manifest) if p.no_deps]


def system_packages(manifest: Manifest) -> list[str]:
    """Debian packages the model's Python packages load libraries from."""
    found = (name for p in flavours.image_packages(manifest) for name in p.system)
    return list(dict.fromkeys(found))


def pinned_packages(manifest: Manifest) -> dict[str, str]:
    """The model's own packages and the versions it was trained with (checked in images)."""
    return {p.name: p.version for p in flavours.image_packages(manifest) if p.version}
