"""``shipml.yaml``: what a project is, loaded and checked with errors that name the key.

A project is a folder with a ``shipml.yaml``::

    name: iris                     # the model's name in the store
    train: train.py                # the training script, run from the project folder
    scoring: score.py              # optional: score.py (init/run) or file.py:Class
    model: [model/, scaler.pkl]    # optional: files/folders to register with every version
                                   # (with a scoring script, train: may then be left out)
    environment: requirements.txt  # optional: requirements.txt or a conda environment.yml
    serve: {workers: 2}            # optional: defaults for 'shipml serve'
    image: {base: python:3.11-slim}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipml.errors import ProjectError
from shipml.model_files import check_project_paths
from shipml.store.reference import NAME_PATTERN
from shipml.store.store import default_store_url

PROJECT_FILE = "shipml.yaml"
KEYS = ("name", "train", "scoring", "model", "environment", "serve", "image", "store")


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    train: Path | None
    scoring: Path | None = None
    scoring_class: str | None = None
    environment: Path | None = None
    serve: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    model: tuple[str, ...] = ()  # registered as they are (Azure ML's model registration)

    @property
    def contract(self) -> str | None:
        if self.scoring is None:
            return None
        return "class" if self.scoring_class else "azureml"


def find_project(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` holding a ``shipml.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return None


def load_project(root: Path | None = None) -> Project:
    """Load and check the project in ``root`` (default: the nearest one above the cwd)."""
    folder = root.resolve() if root else find_project()
    if folder is None or not (folder / PROJECT_FILE).is_file():
        where = folder or Path.cwd()
        raise ProjectError(
            f"no {PROJECT_FILE} in {where}: create a project with "
            "'shipml init DIR --template iris' or run this inside a project folder"
        )
    path = folder / PROJECT_FILE
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProjectError(f"{path} must be a mapping of keys such as name: and train:")
    return _parse(folder, path, raw)


def _parse(folder: Path, path: Path, raw: dict[str, Any]) -> Project:
    def fail(key: str, expected: str) -> ProjectError:
        return ProjectError(f"{path}: key '{key}' {expected}")

    for key in raw:
        if key not in KEYS:
            raise fail(str(key), f"is not known; the keys are: {', '.join(KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise fail("name", "must be a model name: lower-case letters, digits, '.', '_', '-'")

    def script(key: str, required: bool) -> Path | None:
        value = raw.get(key)
        if value is None:
            if required:
                raise fail(key, "is required: the Python file to run, e.g. train.py")
            return None
        if not isinstance(value, str):
            raise fail(key, f"must be a file name, got {value!r}")
        file = folder / value.split(":", 1)[0]
        if not file.is_file():
            raise fail(key, f"names {value!r} but {file} does not exist")
        return file

    model = _model_files(raw.get("model"), fail)
    scoring = script("scoring", required=False)
    if model and scoring is None:
        raise fail(
            "model", "registers files for a scoring script: add scoring: score.py (init/run)"
        )
    try:
        check_project_paths(model, folder)
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc.message}") from None
    if raw.get("train") is None and scoring is None:
        raise fail(
            "train",
            "is required: the Python file to run, e.g. train.py (or, for a score.py that "
            "brings its own model files, scoring: score.py and the files under model:)",
        )
    train = script("train", required=False)
    scoring_class = _scoring_class(raw, fail) if scoring is not None else None
    environment = script("environment", required=False)
    if environment is not None and environment.suffix not in (".txt", ".yml", ".yaml"):
        raise fail("environment", "must be a requirements.txt or a conda environment.yml")
    store = _settings_and_store(raw, fail)
    return Project(
        root=folder,
        name=name,
        train=train,
        scoring=scoring,
        scoring_class=scoring_class,
        environment=environment,
        serve=dict(raw.get("serve") or {}),
        image=dict(raw.get("image") or {}),
        store=store,
        model=model,
    )


def _scoring_class(raw: dict[str, Any], fail: Any) -> str | None:
    """The class of ``scoring: FILE.py:ClassName``, or None for a score.py."""
    if ":" not in raw["scoring"]:
        return None
    scoring_class: str = raw["scoring"].split(":", 1)[1]
    if not scoring_class.isidentifier():
        raise fail("scoring", "must be FILE.py or FILE.py:ClassName")
    return scoring_class


def _settings_and_store(raw: dict[str, Any], fail: Any) -> str | None:
    """Check the ``serve:`` and ``image:`` mappings; the ``store:`` (a URL or folder)."""
    for key in ("serve", "image"):
        if not isinstance(raw.get(key, {}), dict):
            raise fail(key, "must be a mapping, e.g. serve: {workers: 2}")
    store = raw.get("store")
    if store is not None and not isinstance(store, str):
        raise fail("store", "must be a store URL or folder")
    return store


def _model_files(value: Any, fail: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise fail("model", "must be a file or folder, or a list of them: [model/, scaler.pkl]")
    return tuple(items)


def read_requirements(path: Path | None) -> list[str]:
    """The package lines of a requirements file (comments and blanks dropped)."""
    if path is None or path.suffix != ".txt":
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def store_url(explicit: str | None, project: Project | None) -> str:
    """The store to use: ``--store``, else ``$SHIPML_STORE``, else the project's, else local."""
    if explicit:
        return explicit
    if os.environ.get("SHIPML_STORE"):
        return os.environ["SHIPML_STORE"]
    if project is not None and project.store:
        store = project.store
        return store if "://" in store else str(project.root / store)
    return default_store_url()


def store_url_here(explicit: str | None) -> str:
    """The store the user means: ``--store``, ``$SHIPML_STORE``, the nearest project's
    (read only when neither of the first two says), or the default."""
    root = None if (explicit or os.environ.get("SHIPML_STORE")) else find_project()
    return store_url(explicit, load_project(root) if root else None)
