"""Which fields take ``null`` for a model that came without training data (a bare model
file, or save_model without training_data): found by probing a row of zeros with each
field missing (scoring/nulls.py). Answers are compared with the model's own in process."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import shipml
from shipml.scoring.loader import model_from_file
from shipml.scoring.nulls import zero_record
from shipml.serving.app import create_app
from shipml.serving.settings import ServeSettings
from shipml.store import parse_reference
from tests.flavour_support import error, post, probabilities, using_store

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)
NAMES = ["f0", "f1", "f2"]  # what a model fitted on an array calls its features


def nullable(schema: dict[str, object]) -> list[str]:
    properties = schema["properties"]
    assert isinstance(properties, dict)
    return [name for name, field in properties.items() if "null" in str(field)]


def test_a_bare_file_of_a_model_that_takes_nan_answers_null_as_in_process(tmp_path: Path) -> None:
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, Y)
    path = tmp_path / "hgb.joblib"
    joblib.dump(model, path)
    local = model_from_file(path)
    assert nullable(local.manifest.input_schema) == NAMES
    app = create_app(ServeSettings(model=str(path)), lambda: local)
    app.service.load_now()
    rows = [[0.5, None, -1.0], [None, None, None], [1.0, 2.0, 3.0]]
    answers = [r.json() for r in post(app, [dict(zip(NAMES, r, strict=True)) for r in rows])]
    expected = model.predict_proba(np.array(rows, dtype=float))
    np.testing.assert_allclose(probabilities(answers, [0, 1]), expected, rtol=1e-12)


def test_a_model_that_refuses_nan_keeps_its_fields_required(tmp_path: Path) -> None:
    model = LogisticRegression().fit(X, Y)
    path = tmp_path / "logistic.joblib"
    joblib.dump(model, path)
    local = model_from_file(path)
    assert nullable(local.manifest.input_schema) == []
    app = create_app(ServeSettings(model=str(path)), lambda: local)
    app.service.load_now()
    (refused,) = post(app, [{"f0": None, "f1": 1.0, "f2": 2.0}])
    assert "f0" in error(refused)


def test_save_model_without_training_data_probes_the_same_way(tmp_path: Path) -> None:
    with using_store(tmp_path / "store") as store:
        takes = shipml.save_model(HistGradientBoostingClassifier(max_iter=5).fit(X, Y), name="h")
        refuses = shipml.save_model(LogisticRegression().fit(X, Y), name="l")
        schemas = []
        for ref in (takes, refuses):
            parsed = parse_reference(ref)
            schemas.append(store.manifest(parsed.name, store.resolve(parsed))[0].input_schema)
    assert nullable(schemas[0]) == NAMES
    assert nullable(schemas[1]) == []


def test_zeros_only_for_a_schema_of_numbers() -> None:
    numbers = {"properties": {"a": {"type": "number"}, "b": {"type": "integer"}}}
    assert zero_record(numbers) == {"a": 0, "b": 0}
    assert zero_record({"properties": {"a": {"type": "number"}, "t": {"type": "string"}}}) is None
    assert zero_record({"properties": {}}) is None
