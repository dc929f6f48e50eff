"""``shipml.save_model``: the one call a training script makes.

Under ``shipml train`` (``SHIPML_OUTPUT`` set) the model is staged for ``shipml train``
to publish together with the project's code; anywhere else (a notebook, a plain
``python train.py``) it is published straight into the store.

The model's flavour (:mod:`shipml.flavours`) decides how it is written and described.
A model served by the project's own code (``scoring:`` in ``shipml.yaml``) is written as
``model.joblib`` whatever its library, because that code loads it by that name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shipml import flavours, model_files
from shipml.errors import ProjectError, TrainingError
from shipml.flavours.base import Flavour, first_line, is_frame
from shipml.flavours.pickling import PICKLE_FILE, dump_pickle
from shipml.monitoring import profile
from shipml.project import find_project, load_project
from shipml.publish import NO_MODEL, STAGED, publish_staged
from shipml.scoring.nulls import example_refusal, with_nulls
from shipml.scoring.schema import (
    VECTOR,
    InputSchema,
    example_record,
    fingerprint,
    infer_schema,
    missing_columns,
    one_column,
)
from shipml.store.manifest import library_versions

MODEL_FILE = PICKLE_FILE
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
        model: the fitted model (any flavour: scikit-learn, XGBoost, LightGBM, CatBoost,
            statsmodels, an ``.onnx`` file), or ``None`` in a project whose ``score.py``
            (or predictor class) loads its own files from ``files``: then no model file
            is written.
        training_data: the features it was fitted on (a DataFrame, a 2-D array, a dict
            of columns, records as a list of dicts, a scipy sparse matrix, or 1-D data
            for one column or a text pipeline): gives the input schema, a warm-up
            example and a fingerprint.
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
            The same number of training records (any column types, text included) is
            kept as the reference of ``shipml monitor report`` (docs/monitoring.md).

    Example::

        shipml.save_model(clf, training_data=X, feature_names=FEATURES,
                          metrics={"accuracy": 0.97})
    """
    own_code = _served_by_own_code()
    model = model if own_code else _opened(model)  # own scoring code loads its own files
    training_data = _tabular(training_data)
    flavour = _flavour_of(model, own_code)
    data = flavour.schema_data(model, training_data) if flavour else training_data
    vector = False
    if flavour is not None and flavour.feature_names(model) is None:
        # A model that knows no columns of its own fitted on 1-D data: a text pipeline.
        data, feature_names, vector = one_column(data, feature_names)
    elif flavour is not None:  # 1-D data of a model fitted on one column: that column
        data, feature_names, _ = one_column(data, feature_names)
    if flavour is not None and data is not None and input_example is None:
        data, feature_names = _fitted_columns(flavour, model, data, feature_names)
    model_fields = flavour.feature_types(model) if flavour else None
    schema = infer_schema(data, feature_names, input_example, model_fields)
    if vector and schema is not None and len(schema.get("properties") or {}) == 1:
        # 1-D training data (texts): the model gets a 1-D column, whatever the field is named
        schema = {**schema, VECTOR: True}
    frame = bool(flavour and flavour.takes_frame(model, data))
    example = input_example
    if isinstance(example, list):
        example = example[0] if example else None
    if example is None and schema is not None and data is not None:
        example = example_record(schema, data)
    if flavour is not None and not frame and is_frame(data) and not own_code:
        frame = _takes_frame_only(flavour, model, schema, example)
    if flavour is not None and not own_code and input_example is None and schema is not None:
        schema = _with_nulls(
            flavour, model=model, frame=frame, schema=schema, data=data, example=example
        )
    if flavour is not None and not own_code and isinstance(example, dict) and schema is not None:
        _check_example(flavour.wrap(model, frame), schema, example)
    packages = _packages(flavour, model, frame)
    staged: dict[str, Any] = {
        "contract": flavour.name if flavour else None,
        "framework": _framework(flavour, model, packages),
        "libraries": library_versions(packages),
        "flavour": {
            "name": flavour.name if flavour else None,
            "frame": frame,
            "packages": [name for name in packages if name not in ("numpy", "scipy", "joblib")],
        },
        "input_schema": schema,
        # A score.py parses its own body: only an explicit example says what it expects.
        "schema_from_example": input_example is not None,
        "example": example,
        "metrics": {key: float(value) for key, value in (metrics or {}).items()},
        "data": fingerprint(training_data),
        "files": [str(Path(f)) for f in files],
        "model_saved": model is not None,
    }
    sample = training_sample(data, schema, sample_rows)
    writer = None if own_code or flavour is None else flavour
    answers = None
    if writer is not None and schema is not None and input_example is None:
        answers = profile.answers_of(writer.wrap(model, frame), schema, frame)
    reference = profile.build(data, schema, sample_rows, answers)
    extra = {"sample": sample, "reference": reference}
    output = os.environ.get("SHIPML_OUTPUT")
    if output:
        return _stage(Path(output), model, writer, staged=staged, name=name, **extra)
    with tempfile.TemporaryDirectory(prefix="shipml-") as folder:
        _stage(Path(folder), model, writer, staged=staged, name=name, **extra)
        manifest, _ = publish_staged(Path(folder), project_root=None)
        return manifest.ref


def _opened(model: Any) -> Any:
    """The model in a file given by its path: XGBoost's ``model.json``, LightGBM's
    ``model.txt``, CatBoost's ``model.cbm``, as each library's docs save them, or a
    pickle. An ``.onnx`` path is the ONNX flavour's own; anything else is the model."""
    if not isinstance(model, str | os.PathLike) or flavours.detect(model) is not None:
        return model
    path = Path(model)
    if not path.is_file():
        raise TrainingError(f"{path}: no such model file")
    try:
        return flavours.from_file(path)[1]
    except Exception as exc:
        readers = (f for f in flavours.REGISTRY if f.file_suffixes)
        own = ", ".join(f"{f.library} {' '.join(f.file_suffixes)}" for f in readers)
        raise TrainingError(
            f"{path} is not a model file shipml can read ({type(exc).__name__}: "
            f"{first_line(exc)}): pass the fitted model object, or a pickle, or a file its "
            f"library saved ({own})"
        ) from None


# A sparse training matrix is made dense up to this many values (80 MB of float64).
DENSE_LIMIT = 10_000_000


def _tabular(training_data: Any) -> Any:
    """Training data as a table the schema reads: records (a list of dicts, as requests
    send them) as columns, and a scipy sparse matrix as the dense rows a request sends
    (it describes the fields, their types and the reference sample: a sample of the rows
    does as well)."""
    records = isinstance(training_data, list) and training_data
    if records and all(isinstance(record, dict) for record in training_data):
        names = list(dict.fromkeys(key for record in training_data for key in record))
        return {name: [record.get(name) for record in training_data] for name in names}
    if not type(training_data).__module__.startswith("scipy.sparse"):
        return training_data
    rows, columns = training_data.shape
    if rows * columns > DENSE_LIMIT:
        raise TrainingError(
            f"training_data is a sparse matrix of {rows} rows x {columns} columns, too "
            "large to make dense here: pass a sample of its rows as dense ones, "
            "e.g. training_data=X[:1000].toarray(). For texts, put the vectorizer in a "
            "Pipeline with the model and pass the texts"
        )
    return training_data.toarray()


def _flavour_of(model: Any, own_code: bool) -> Flavour | None:
    """The model's flavour; None for a project whose own code loads its files."""
    if model is None and not own_code:
        raise TrainingError(NO_MODEL)
    flavour = flavours.detect(model) if model is not None else None
    if flavour is None and not own_code:
        raise TrainingError(
            f"shipml cannot serve a {type(model).__name__} without scoring code: no flavour "
            f"({', '.join(f.name for f in flavours.REGISTRY)}) knows it. Add 'scoring: "
            "score.py' to shipml.yaml, or save the fitted model object itself"
        )
    problem = flavour.unservable(model) if flavour is not None and not own_code else None
    if problem is not None:
        raise TrainingError(f"shipml cannot serve this model: {problem}")
    return flavour


def _takes_frame_only(flavour: Flavour, model: Any, schema: Any, example: Any) -> bool:
    """Whether a model fitted on a DataFrame that keeps no column names of its own takes
    only the DataFrame: one whose first step is code of the user's that selects columns
    by name (the ``DataFrameSelector`` of many notebooks) fails on plain rows."""
    if not isinstance(example, dict) or schema is None:
        return False
    if example_refusal(flavour.wrap(model, False), schema, example) is None:
        return False
    return example_refusal(flavour.wrap(model, True), schema, example) is None


def _check_example(loaded: Any, schema: dict[str, Any], example: dict[str, Any]) -> None:
    """Refuse now a model that cannot answer its own example: the service warms up with it."""
    problem = example_refusal(loaded, schema, example)
    if problem is not None:
        raise TrainingError(
            f"the model cannot answer its own example, a training row sent the way the "
            f"service will send requests ({problem}); the service warms up with it and "
            "would never become ready. Pass training_data as the model was fitted on it "
            "(the same columns, names and dtypes), or input_example= a record it answers"
        )


def _served_by_own_code() -> bool:
    """Whether the project around (if any) serves its model with its own scoring code."""

    root = find_project()
    if root is None:
        return False
    try:
        return load_project(root).contract is not None
    except ProjectError:
        return False  # publishing reports the broken shipml.yaml


def _fitted_columns(
    flavour: Flavour, model: Any, data: Any, feature_names: Sequence[str] | None
) -> tuple[Any, Sequence[str] | None]:
    """``data`` and ``feature_names`` matched to the columns the model checks by name.

    A model fitted on a DataFrame refuses any other columns: a frame with more (the
    target left in, say) is narrowed to the model's own, in its order; a numpy array
    gets the model's names (a script often passes ``X_train.values``).
    """
    fitted = flavour.fitted_names(model)
    if fitted is None or isinstance(data, dict):
        return data, feature_names
    if is_frame(data):
        columns = {str(c): c for c in data.columns}
        if list(columns) == fitted or any(name not in columns for name in fitted):
            # Names the frame lacks (a wrapped LightGBM reports sanitised ones): the frame
            # stays as it is, and the example check below says if the model refuses it.
            return data, feature_names
        return data[[columns[name] for name in fitted]], feature_names
    if feature_names is None:
        return data, fitted
    if [str(n) for n in feature_names] != fitted:
        raise TrainingError(
            f"feature_names {list(feature_names)[:5]}... are not the columns the model was "
            f"fitted on ({fitted[:5]}...): pass the model's own (model.feature_names_in_)"
        )
    return data, feature_names


def _with_nulls(
    flavour: Flavour,
    *,
    model: Any,
    frame: bool,
    schema: dict[str, Any],
    data: Any,
    example: dict[str, Any] | None,
) -> dict[str, Any]:
    """``schema`` with ``null`` allowed where the model takes a missing value."""
    names = list(schema.get("required") or schema["properties"])
    known = missing_columns(data, names) if data is not None else set()
    return with_nulls(flavour.wrap(model, frame), schema, example, known)


def _packages(flavour: Flavour | None, model: Any, frame: bool) -> list[str]:
    """The distributions the model's files need (its flavour's library first)."""
    found = flavour.libraries(model) if flavour else []
    if frame and "pandas" not in found:
        found.append("pandas")
    return list(dict.fromkeys(found))


def training_sample(training_data: Any, schema: dict[str, Any] | None, rows: int) -> Any:
    """Up to ``rows`` training rows as a float64 matrix in the schema's feature order.

    Rows are drawn at random with a fixed seed (the first rows of a sorted data set are
    often all one class), kept in their original order; rows with a missing value are
    left out. Only numeric feature tables are sampled: ``None`` for anything else, or
    when ``rows`` is 0.
    """
    if rows < 0:
        raise TrainingError(f"sample_rows must be 0 or more, got {rows}")
    if rows == 0 or training_data is None or schema is None:
        return None
    compiled = InputSchema(schema)
    if not compiled.numeric:
        return None
    names = list(compiled.names)
    try:
        if hasattr(training_data, "iloc"):
            matrix = training_data[names].to_numpy(dtype=np.float64)
        elif isinstance(training_data, dict):
            matrix = np.column_stack([np.asarray(training_data[n], np.float64) for n in names])
        else:
            matrix = np.asarray(training_data, dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        return None
    matrix = matrix[~np.isnan(matrix).any(axis=1)]  # the ONNX path serves complete rows only
    if len(matrix) == 0:
        return None
    if len(matrix) > rows:
        chosen = np.random.default_rng(0).choice(len(matrix), size=rows, replace=False)
        matrix = matrix[np.sort(chosen)]
    return np.ascontiguousarray(matrix)


def _stage(
    folder: Path,
    model: Any,
    flavour: Flavour | None,
    *,
    staged: dict[str, Any],
    name: str | None,
    sample: Any = None,
    reference: profile.Reference | None = None,
) -> str:
    """Write the model (by its flavour, or as ``model.joblib`` for scoring code) and what
    ``shipml train`` publishes with it."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / STAGED).exists():
        raise TrainingError("save_model was called twice in one training run; call it once")
    extras = model_files.collect(staged["files"])  # checked before anything is written
    saved_files: list[str] = []
    details: dict[str, Any] = {}
    fmt: str | None = None
    if model is not None and flavour is None:
        saved_files, fmt = [dump_pickle(model, folder)], "joblib"
    elif model is not None and flavour is not None:
        saved = flavour.save(model, folder)
        saved_files, fmt, details = saved.files, saved.format, saved.details
    for relpath in extras:
        if relpath in saved_files:
            raise model_files.ModelFilesError(
                f"save_model(files=...): {relpath!r} is the name the model itself is saved "
                "under; rename the file or put it in a folder and register the folder"
            )
    staged["model_files"] = saved_files
    staged["flavour"] = {**staged["flavour"], "format": fmt, **details}
    if sample is not None:
        np.save(folder / SAMPLE_FILE, sample, allow_pickle=False)
        staged["sample"] = {"file": SAMPLE_FILE, "rows": len(sample)}
    if reference is not None:
        (folder / profile.REFERENCE_FILE).write_bytes(reference.to_bytes())
        staged["reference"] = {"file": profile.REFERENCE_FILE, "rows": len(reference.records)}
        staged["profile"] = reference.profile()
    model_files.copy_into(extras, folder)
    staged["files"] = list(extras)
    staged["name"] = name
    (folder / STAGED).write_bytes(orjson.dumps(staged))
    return str(folder)


def _framework(flavour: Flavour | None, model: Any, packages: list[str]) -> dict[str, str]:
    """The model's library and its version (the first of its packages: its flavour's own,
    or for any other object the distribution its class comes from)."""
    if model is None:
        return {}
    package = packages[0] if packages else None
    if package is None:
        module = type(model).__module__.split(".")[0]

        owners = metadata.packages_distributions().get(module, [])
        package = owners[0].lower() if owners else module
    version = library_versions([package]).get(package)
    return {"name": package, "version": version} if version else {"name": package}
