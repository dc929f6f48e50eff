"""``shipml.save_model``: the one call a training script makes.

Under ``shipml train`` (``SHIPML_OUTPUT`` set) the model is staged for ``shipml train``
to publish together with the project's code; anywhere else (a notebook, a plain
``python train.py``) it is published straight into the store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson

from shipml import model_files
from shipml.errors import TrainingError
from shipml.scoring.schema import example_record, fingerprint, infer_schema
from shipml.store.manifest import Manifest, library_versions

STAGED = "staged.json"
MODEL_FILE = "model.joblib"
SAMPLE_FILE = "training-sample.npy"
# Enough rows to catch a conversion that goes wrong (ONNX computes in float32) while
# keeping the copy of the training data small; save_model(sample_rows=0) keeps none.
SAMPLE_ROWS = 500


def save_model(
    model: Any,
    *,
    training_data: Any = None,
    feature_names: Sequence[str] | None = None,
    input_example: Any = None,
    metrics: dict[str, float] | None = None,
    files: Iterable[str | Path] = (),
    name: str | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> str:
    """Save a trained model as the next version in the store; returns its reference.

    Args:
        model: the fitted estimator (anything joblib can pickle), or ``None`` in a project
            whose ``score.py`` (or predictor class) loads its own files from ``files``:
            then no ``model.joblib`` is written.
        training_data: the features it was fitted on (2-D array, dict of columns or
            DataFrame): gives the input schema, a warm-up example and a fingerprint.
        feature_names: the column names of a 2-D array ``training_data``.
        input_example: one record, e.g. ``{"text": "I love it"}``, for models whose
            input is not a feature table (a ``score.py`` model).
        metrics: numbers to keep with the version, e.g. ``{"accuracy": 0.97}``.
        files: files and folders the scoring code needs. As in Azure ML, a file lands
            at ``AZUREML_MODEL_DIR/<its name>`` and a folder ``model/`` keeps its tree at
            ``AZUREML_MODEL_DIR/model/...``.
        name: the model name; defaults to the project's name.
        sample_rows: how many training rows (drawn at random, in feature order) to keep
            in the store with the version, so that a later ``shipml build --onnx`` or
            ``serve --onnx`` can check the ONNX conversion against scikit-learn. The
            sample stays in the store: it is neither fetched for serving nor put in
            images. ``0`` keeps none (then ``--onnx`` is refused for this version).

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
        "model_saved": model is not None,
    }
    sample = training_sample(training_data, schema, sample_rows)
    output = os.environ.get("SHIPML_OUTPUT")
    if output:
        return _stage(Path(output), model, staged, name, sample)
    from shipml.train import publish_staged  # publishing needs the project and store

    with tempfile.TemporaryDirectory(prefix="shipml-") as folder:
        _stage(Path(folder), model, staged, name, sample)
        manifest, _ = publish_staged(Path(folder), project_root=None)
        return manifest.ref


def training_sample(training_data: Any, schema: dict[str, Any] | None, rows: int) -> Any:
    """Up to ``rows`` training rows as a float64 matrix in the schema's feature order.

    Rows are drawn at random with a fixed seed (the first rows of a sorted data set are
    often all one class), kept in their original order. Only numeric feature tables are
    sampled: ``None`` for anything else, or when ``rows`` is 0.
    """
    if rows < 0:
        raise TrainingError(f"sample_rows must be 0 or more, got {rows}")
    if rows == 0 or training_data is None or schema is None:
        return None
    names = list(schema.get("required") or schema["properties"])
    kinds = [schema["properties"][n].get("type") for n in names]
    if any(kind not in ("number", "integer") for kind in kinds):
        return None
    try:
        if hasattr(training_data, "iloc"):
            matrix = training_data[names].to_numpy(dtype=np.float64)
        elif isinstance(training_data, dict):
            matrix = np.column_stack([np.asarray(training_data[n], np.float64) for n in names])
        else:
            matrix = np.asarray(training_data, dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if matrix.ndim != 2 or matrix.shape[1] != len(names) or len(matrix) == 0:
        return None
    if len(matrix) > rows:
        chosen = np.random.default_rng(0).choice(len(matrix), size=rows, replace=False)
        matrix = matrix[np.sort(chosen)]
    return np.ascontiguousarray(matrix)


def _stage(
    folder: Path, model: Any, staged: dict[str, Any], name: str | None, sample: Any = None
) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / STAGED).exists():
        raise TrainingError("save_model was called twice in one training run; call it once")
    if model is not None:
        joblib.dump(model, folder / MODEL_FILE)
    if sample is not None:
        np.save(folder / SAMPLE_FILE, sample, allow_pickle=False)
        staged["sample"] = {"file": SAMPLE_FILE, "rows": len(sample)}
    extras = model_files.collect(staged["files"])
    model_files.copy_into(extras, folder)
    staged["files"] = list(extras)
    staged["name"] = name
    (folder / STAGED).write_bytes(orjson.dumps(staged))
    return str(folder)


def _framework(model: Any) -> dict[str, str]:
    if model is None:
        return {}
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
        model_file=MODEL_FILE if staged.get("model_saved", True) else None,
        framework=staged["framework"],
        libraries=staged["libraries"],
        input_schema=staged["input_schema"],
        example=staged["example"],
        metrics=staged["metrics"],
        data=staged["data"],
    )
