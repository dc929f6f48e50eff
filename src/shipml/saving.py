"""``shipml.save_model``: the one call a training script makes.

Under ``shipml train`` (``SHIPML_OUTPUT`` set) the model is staged for ``shipml train``
to publish together with the project's code; anywhere else (a notebook, a plain
``python train.py``) it is published straight into the store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import joblib
import orjson

from shipml.errors import TrainingError
from shipml.scoring.schema import example_record, fingerprint, infer_schema
from shipml.store.manifest import Manifest, library_versions

STAGED = "staged.json"
MODEL_FILE = "model.joblib"


def save_model(
    model: Any,
    *,
    training_data: Any = None,
    feature_names: Sequence[str] | None = None,
    input_example: Any = None,
    metrics: dict[str, float] | None = None,
    files: Iterable[str | Path] = (),
    name: str | None = None,
) -> str:
    """Save a trained model as the next version in the store; returns its reference.

    Args:
        model: the fitted estimator (anything joblib can pickle).
        training_data: the features it was fitted on (2-D array, dict of columns or
            DataFrame): gives the input schema, a warm-up example and a fingerprint.
        feature_names: the column names of a 2-D array ``training_data``.
        input_example: one record, e.g. ``{"text": "I love it"}``, for models whose
            input is not a feature table (a ``score.py`` model).
        metrics: numbers to keep with the version, e.g. ``{"accuracy": 0.97}``.
        files: extra files the scoring code needs, stored beside the model.
        name: the model name; defaults to the project's name.

    Example::

        shipml.save_model(clf, training_data=X, feature_names=FEATURES,
                          metrics={"accuracy": 0.97})
    """
    schema = infer_schema(training_data, feature_names, input_example, model)
    example = input_example
    if isinstance(example, list):
        example = example[0] if example else None
    if example is None and schema is not None and training_data is not None:
        example = example_record(schema, training_data)
    staged = {
        "framework": _framework(model),
        "libraries": library_versions(),
        "input_schema": schema,
        # A score.py parses its own body: only an explicit example says what it expects.
        "schema_from_example": input_example is not None,
        "example": example,
        "metrics": {key: float(value) for key, value in (metrics or {}).items()},
        "data": fingerprint(training_data),
        "files": [str(Path(f)) for f in files],
    }
    output = os.environ.get("SHIPML_OUTPUT")
    if output:
        return _stage(Path(output), model, staged, name)
    from shipml.train import publish_staged  # publishing needs the project and store

    with tempfile.TemporaryDirectory(prefix="shipml-") as folder:
        _stage(Path(folder), model, staged, name)
        manifest, _ = publish_staged(Path(folder), project_root=None)
        return manifest.ref


def _stage(folder: Path, model: Any, staged: dict[str, Any], name: str | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / STAGED).exists():
        raise TrainingError("save_model was called twice in one training run; call it once")
    joblib.dump(model, folder / MODEL_FILE)
    for extra in staged["files"]:
        source = Path(extra)
        if not source.is_file():
            raise TrainingError(f"save_model(files=...) names {extra!r}, which is not a file")
        if source.name in (MODEL_FILE, STAGED, "manifest.json"):
            raise TrainingError(f"save_model(files=...): {source.name!r} is a reserved name")
        shutil.copyfile(source, folder / source.name)
    staged["files"] = sorted(Path(f).name for f in staged["files"])
    staged["name"] = name
    (folder / STAGED).write_bytes(orjson.dumps(staged))
    return str(folder)


def _framework(model: Any) -> dict[str, str]:
    module = type(model).__module__.split(".")[0]
    package = {"sklearn": "scikit-learn"}.get(module, module)
    version = library_versions().get(package)
    return {"name": package, "version": version} if version else {"name": package}


def staged_manifest(staged: dict[str, Any], name: str, contract: str) -> Manifest:
    """A manifest (version and files still to fill in) from what save_model staged."""
    return Manifest(
        name=name,
        version=0,
        created="",
        contract=contract,
        files={},
        model_file=MODEL_FILE,
        framework=staged["framework"],
        libraries=staged["libraries"],
        input_schema=staged["input_schema"],
        example=staged["example"],
        metrics=staged["metrics"],
        data=staged["data"],
    )
