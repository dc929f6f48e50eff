"""MLflow model folders (``MLmodel`` beside ``model.pkl``), served without MLflow.

What ``mlflow.sklearn.log_model`` or ``save_model`` writes is the model most data
scientists already have. The folder's pickle alone says too little: a pipeline fitted on a
DataFrame knows its columns' names but not their types, so every field would be taken for
a number. Its ``MLmodel`` file says the rest. The signature gives each column's name,
type and whether it may be missing, and the sklearn flavour gives the pickle and the
scikit-learn version it was made with. ``shipml serve path/to/model`` reads both, and
serves the model as MLflow's pyfunc scores it: a DataFrame of the signature's columns and
types, with ``null`` where the signature makes a column optional
(tests/integration/test_mlflow_models.py compares the answers with MLflow's own).

Only the sklearn flavour is read. Other flavours are named in the error, with the file to
pass instead when a shipml flavour reads it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml

from shipml import flavours
from shipml.errors import ProjectError
from shipml.flavours.pickling import load_pickle
from shipml.scoring.nulls import with_nulls
from shipml.scoring.schema import allow_null, infer_schema, properties_schema
from shipml.scoring.versions import check_libraries
from shipml.store.manifest import FileEntry, Manifest, sha256_digest
from shipml.store.store import LocalModel

# MLflow's column types, as the JSON Schema property of a field that takes them, and the
# dtype the model gets. MLflow's pyfunc casts numbers and booleans to these dtypes
# (mlflow.models.utils' _enforce_mlflow_datatype). It leaves a string column as pandas
# built it from the request: object, or pandas 3's str. Here it is object, with NaN for a
# missing value, as pandas makes it. The answers are compared with MLflow's pyfunc in
# tests/integration/test_mlflow_models.py.
COLUMN_TYPES: dict[str, dict[str, Any]] = {
    "double": {"type": "number", "x-dtype": "float64"},
    "float": {"type": "number", "x-dtype": "float32"},
    "long": {"type": "integer", "x-dtype": "int64"},
    "integer": {"type": "integer", "x-dtype": "int32"},
    "boolean": {"type": "boolean", "x-dtype": "bool"},
    "string": {"type": "string", "x-dtype": "object"},
}
# Other flavours whose model file (MLmodel's "data") a shipml flavour may read by itself.
OTHER_FLAVOURS = ("xgboost", "lightgbm", "catboost", "onnx")


def mlflow_model(mlmodel: Path, probe: bool = True) -> LocalModel:
    """A :class:`LocalModel` for the MLflow model whose ``MLmodel`` file is ``mlmodel``.

    ``probe`` as for a bare model file (:func:`shipml.scoring.loader.model_from_file`): a
    signature that says nothing of missing values leaves them to the model's own probe.
    """
    folder = mlmodel.parent
    spec = _read(mlmodel)
    sklearn = spec.get("flavors", {}).get("sklearn")
    if not isinstance(sklearn, dict):
        raise ProjectError(_unsupported(folder, spec.get("flavors", {})))
    pickled = folder / str(sklearn.get("pickled_model", "model.pkl"))
    fmt = sklearn.get("serialization_format", "cloudpickle")
    if fmt not in ("pickle", "cloudpickle", "skops"):
        raise ProjectError(
            f"{folder}: the model is saved as {fmt!r}; shipml reads MLflow's skops, pickle "
            "and cloudpickle formats"
        )
    if fmt == "skops" and importlib.util.find_spec("skops") is None:
        raise ProjectError(
            f"{folder}: the model is saved in skops' format (MLflow 3's default); "
            "pip install skops to serve it"
        )
    if not pickled.is_file():
        raise ProjectError(f"{folder}: MLmodel names {pickled.name}, which is not there")
    data = pickled.read_bytes()
    libraries = (
        {"scikit-learn": str(sklearn["sklearn_version"])} if "sklearn_version" in sklearn else {}
    )
    manifest = Manifest(
        name=folder.name.lower() or "model",  # as a bare file's: its name
        version=0,
        created=str(spec.get("utc_time_created", "")),
        contract="sklearn",
        files={pickled.name: FileEntry(digest=sha256_digest(data), size=len(data))},
        model_file=pickled.name,
        framework={
            "name": "scikit-learn",
            **({"version": libraries["scikit-learn"]} if libraries else {}),
        },
        libraries=libraries,
        source={
            "mlflow": {"model_uuid": spec.get("model_uuid"), "version": spec.get("mlflow_version")}
        },
    )
    check_libraries(manifest)  # a pickle from another major version is refused before it loads
    model = load_pickle(pickled)
    flavour = flavours.detect(model)
    if flavour is None:
        raise ProjectError(f"{pickled} holds a {type(model).__name__}, which no flavour serves")
    manifest.contract = flavour.name  # an XGBClassifier logged with mlflow.sklearn: xgboost
    columns = _signature_columns(spec, folder)
    if columns is None:  # no column signature: what the model itself says, as for a bare file
        schema = infer_schema(model_fields=flavour.feature_types(model))
        frame = flavour.takes_frame(model, None)
        if schema is None:
            raise ProjectError(
                f"{folder}: neither the MLmodel signature nor the model says which features it "
                "takes; log it with a signature (mlflow.models.infer_signature)"
            )
        if probe:
            schema = with_nulls(flavour.wrap(model, frame), schema, None)
    else:
        schema, frame = properties_schema(columns), True  # MLflow's pyfunc passes a DataFrame
    manifest.input_schema = schema
    manifest.flavour = {"name": flavour.name, "frame": frame}
    return LocalModel(folder=folder, manifest=manifest, digest=sha256_digest(data))


def _read(mlmodel: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(mlmodel.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f"{mlmodel} is not an MLflow MLmodel file: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise ProjectError(f"{mlmodel} is not an MLflow MLmodel file: it has no flavors")
    return spec


def _signature_columns(spec: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]] | None:
    """Field name → JSON Schema property from a column-based signature (None: no
    signature, or a tensor-based one, which names no columns)."""
    signature = spec.get("signature") or {}
    raw = signature.get("inputs")
    if not raw:
        return None
    columns = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and "name" in c and c.get("type") != "tensor" for c in columns
    ):
        return None
    properties: dict[str, dict[str, Any]] = {}
    for column in columns:
        kind = COLUMN_TYPES.get(str(column.get("type")))
        if kind is None:
            raise ProjectError(
                f"{folder}: the signature's column {column['name']!r} is of type "
                f"{column.get('type')!r}; shipml serves MLflow's {', '.join(COLUMN_TYPES)} "
                "columns"
            )
        required = column.get("required", True)
        properties[str(column["name"])] = dict(kind) if required else allow_null(dict(kind))
    return properties


def _unsupported(folder: Path, found: dict[str, Any]) -> str:
    names = ", ".join(name for name in found if name != "python_function") or "none"
    message = f"{folder} is an MLflow model of flavour {names}; "
    message += "shipml reads MLflow's sklearn flavour"
    readable = {suffix for flavour in flavours.REGISTRY for suffix in flavour.file_suffixes}
    for name in OTHER_FLAVOURS:
        spec = found.get(name)
        data = spec.get("data") if isinstance(spec, dict) else None
        if isinstance(data, str) and Path(data).suffix in readable:
            message += f", and reads this {name} model's own file: shipml serve {folder / data}"
    return message
