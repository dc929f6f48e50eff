"""MLflow model folders read without MLflow (scoring/mlflow_model.py): the MLmodel file's
signature, flavour and versions, and the errors that say what to do. The answers are
compared with MLflow's own in tests/integration/test_mlflow_models.py; these folders are
written by hand, in MLflow's format, so they need no MLflow."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

from shipml.errors import ProjectError
from shipml.scoring.loader import load_scorer, model_from_file
from shipml.scoring.versions import LibraryMismatch
from shipml.store.reference import parse_reference

COLUMNS = [
    {"type": "double", "name": "age", "required": False},
    {"type": "long", "name": "rooms", "required": True},
    {"type": "boolean", "name": "new"},  # MLflow before 2.9 wrote no "required": required
    {"type": "string", "name": "city", "required": True},
]


def mlflow_folder(
    tmp_path: Path,
    columns: list[dict[str, object]] | None = COLUMNS,
    version: str = sklearn.__version__,
    fmt: str = "pickle",
) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    frame = pd.DataFrame({"age": [30.0, 40.0], "rooms": [2, 3], "new": [True, False]})
    model = LogisticRegression().fit(frame, ["a", "b"])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    signature = f"signature:\n  inputs: '{json.dumps(columns)}'\n" if columns else ""
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n"
        f"    serialization_format: {fmt}\n    sklearn_version: {version}\n"
        "mlflow_version: 3.17.2\n" + signature
    )
    return folder


def test_the_signature_gives_the_fields_types_and_optional_columns(tmp_path: Path) -> None:
    # the schema is the signature's, whatever the pickle holds (here without "city")
    folder = mlflow_folder(tmp_path)
    reference = parse_reference(str(folder))  # the folder names the model
    assert reference.path == folder.resolve() / "MLmodel" and reference.name == "model"
    local = model_from_file(folder / "MLmodel")
    schema = local.manifest.input_schema
    assert schema is not None and schema["required"] == ["age", "rooms", "new", "city"]
    kinds = {name: p["type"] for name, p in schema["properties"].items()}
    assert kinds == {
        "age": ["number", "null"],
        "rooms": "integer",
        "new": "boolean",
        "city": "string",
    }
    assert local.manifest.flavour == {"name": "sklearn", "frame": True}
    assert local.manifest.libraries == {"scikit-learn": sklearn.__version__}


def test_without_a_signature_the_models_own_features_are_used(tmp_path: Path) -> None:
    local = model_from_file(mlflow_folder(tmp_path, columns=None) / "MLmodel")
    assert local.manifest.input_schema is not None
    assert local.manifest.input_schema["required"] == ["age", "rooms", "new"]
    scorer = load_scorer(local)
    body = b'{"age": 35, "rooms": 2, "new": 1}'  # without a signature: all numbers
    prepared = scorer.prepare(json.loads(body), body)
    assert np.asarray(scorer.predict(prepared.data)).shape[0] == 1


def test_a_pickle_from_another_major_version_is_refused_before_it_is_opened(
    tmp_path: Path,
) -> None:
    folder = mlflow_folder(tmp_path, version="0.24.2")
    (folder / "model.pkl").write_bytes(b"not a pickle: never opened")
    with pytest.raises(LibraryMismatch, match=r"scikit-learn==0\.24\.2"):
        model_from_file(folder / "MLmodel")


@pytest.mark.parametrize(
    ("columns", "fmt", "message"),
    [
        ([{"type": "datetime", "name": "when"}], "pickle", "'when' is of type 'datetime'"),
        (COLUMNS, "joblib", "saved as 'joblib'"),
        (COLUMNS, "skops", "pip install skops"),  # MLflow 3's default; skops is not installed
    ],
)
def test_what_shipml_does_not_read_is_one_clear_error(
    tmp_path: Path, columns: list[dict[str, object]], fmt: str, message: str
) -> None:
    folder = mlflow_folder(tmp_path, columns=columns, fmt=fmt)
    with pytest.raises(ProjectError, match=message):
        model_from_file(folder / "MLmodel")


def test_a_file_that_is_not_an_mlmodel_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "MLmodel").write_text("just: text\n")
    with pytest.raises(ProjectError, match="is not an MLflow MLmodel file: it has no flavors"):
        model_from_file(folder / "MLmodel")
