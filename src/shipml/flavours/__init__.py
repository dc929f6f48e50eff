"""Flavours: one module per machine-learning library, behind one protocol (:mod:`.base`).

``REGISTRY`` is the one list of flavours, in the order detection tries them: specific
libraries first, scikit-learn last (it also serves any other object with a scikit-learn
style ``predict``). Adding a flavour is a module and a line here; see
docs/architecture.md, "Adding a flavour".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipml.errors import ProjectError
from shipml.flavours import catboost, lightgbm, onnx, sklearn, statsmodels, xgboost
from shipml.flavours.base import Flavour, Loaded, Package, Saved
from shipml.flavours.pickling import load_pickle
from shipml.store.manifest import Manifest

REGISTRY: tuple[Flavour, ...] = (
    onnx.FLAVOUR,
    xgboost.FLAVOUR,
    lightgbm.FLAVOUR,
    catboost.FLAVOUR,
    statsmodels.FLAVOUR,
    sklearn.FLAVOUR,
)

__all__ = ["REGISTRY", "Flavour", "Loaded", "Package", "Saved", "detect", "named", "of_manifest"]


def detect(model: Any) -> Flavour | None:
    """The flavour that serves ``model``, or None when none does."""
    return next((flavour for flavour in REGISTRY if flavour.detect(model)), None)


def named(name: str) -> Flavour | None:
    return next((flavour for flavour in REGISTRY if flavour.name == name), None)


def of_manifest(manifest: Manifest) -> Flavour | None:
    """The flavour a version is served with zero-code (its contract names it), else None.

    Manifests written before flavours existed say ``"contract": "sklearn"``: the name of
    the scikit-learn flavour, so they load as they always did.
    """
    return named(manifest.contract)


def of_library(library: str) -> Flavour | None:
    return next((flavour for flavour in REGISTRY if flavour.library == library), None)


def image_packages(manifest: Manifest) -> list[Package]:
    """The packages a serve image of ``manifest`` needs, each installed the way the
    flavour owning it says (its own version pinned to the trained one)."""
    flavour = of_manifest(manifest) or (
        of_library(manifest.framework.get("name", "")) if manifest.framework else None
    )
    if flavour is None:
        return []
    packages = []
    for package in flavour.packages(manifest):
        owner = of_library(package.name)
        packages.append(owner.install(package) if owner is not None else package)
    return packages


def strict_libraries(manifest: Manifest) -> list[str]:
    """Libraries whose major version must match at load: the model's own packages."""
    names = manifest.flavour.get("packages")
    if isinstance(names, list):
        return [str(name) for name in names]
    framework = manifest.framework.get("name")
    return [framework] if framework else []


def from_file(path: Path) -> tuple[Flavour, Any]:
    """The flavour and model object of a bare model file given on the command line."""
    for flavour in REGISTRY:
        if path.suffix in flavour.file_suffixes:
            return flavour, flavour.read_file(path)

    model = load_pickle(path)
    found = detect(model)
    if found is None:
        raise ProjectError(f"{path} holds a {type(model).__name__}, which no flavour serves")
    return found, model
