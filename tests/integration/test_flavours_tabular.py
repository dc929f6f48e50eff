"""Tabular models end to end: the census-like pipeline through ``shipml train`` and a real
``shipml serve``, and histogram gradient boosting on category columns. Answers equal the
in-process prediction, rows with nulls included, and every bad record gets its 422."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from openapi_spec_validator import validate
from sklearn.ensemble import HistGradientBoostingClassifier

import shipml
from shipml.store import Store, parse_reference
from tests.conftest import REPO, Server, run_shipml
from tests.fixtures.census.data import census
from tests.flavour_support import app_for, error, post, probabilities, records, using_store

pytestmark = pytest.mark.slow
CENSUS = REPO / "tests" / "fixtures" / "census"


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The census project trained by ``shipml train``, and HGB saved once."""
    folder = tmp_path_factory.mktemp("tabular")
    shutil.copytree(CENSUS, folder / "census", ignore=shutil.ignore_patterns("__pycache__"))
    run_shipml("train", cwd=folder / "census", env={"SHIPML_STORE": str(folder / "store")})
    frame, labels = census()
    models: dict[str, Any] = {"folder": folder}
    with using_store(folder / "store") as store:
        models["store"] = store
        hgb_data = frame.drop(columns=["education", "city"])
        hgb = HistGradientBoostingClassifier(
            max_iter=30, categorical_features="from_dtype", random_state=0
        ).fit(hgb_data, labels)
        shipml.save_model(hgb, training_data=hgb_data, name="hgb")
        models["hgb"] = (hgb, hgb_data)
    return models


# -- the census-like pipeline, through shipml train and shipml serve ---------------------


def test_census_through_train_and_serve(tabular: dict[str, Any], serve: Any) -> None:
    folder: Path = tabular["folder"]
    store_env = {"SHIPML_STORE": str(folder / "store")}
    server: Server = serve("census@latest", env=store_env)
    local = Store(str(folder / "store")).fetch(parse_reference("census@latest"))
    manifest = local.manifest
    frame, _ = census()
    # The first row has a missing value: the example is the first complete row instead.
    assert manifest.example == records(frame.dropna().head(1))[0]
    schema = manifest.input_schema
    assert schema is not None
    kinds = {name: prop["type"] for name, prop in schema["properties"].items()}
    assert kinds["capital_gain"] == ["number", "null"]  # missing in training, imputed
    assert kinds["married"] == "boolean"  # a bool column holds no missing value
    assert schema["properties"]["job"]["enum"][:5] == ["admin", "craft", "exec", "sales", "service"]
    model = joblib.load(local.folder / manifest.model_file)  # the very model served
    query = pd.concat([frame.head(25), frame.tail(5).assign(job=None, age=np.nan)])
    with server.client() as client:
        answer = client.post("/predict", json=records(query))
        assert answer.status_code == 200, answer.text
        got = answer.json()
        info = client.get("/info").json()
        assert info["input_schema"]["properties"]["capital_gain"]["type"] == ["number", "null"]
        openapi = client.get("/openapi.json").json()
        validate(openapi)  # nullable types, enums with null and x-dtype are valid OpenAPI 3.1
        record = openapi["components"]["schemas"]["Record"]["properties"]
        # nullable: anyOf with null; the categories listed, as the model refuses others
        job = record["job"]
        assert job["x-dtype"] == "category" and {"type": "null"} in job["anyOf"]
        assert sorted(job["anyOf"][0]["enum"]) == sorted(frame["job"].dropna().unique())
        reference = model.predict_proba(query.astype(frame.dtypes.to_dict() | {"age": float}))
        assert probabilities(got, list(model.classes_)).tolist() == reference.tolist()
        bad = {
            "job": ("pilot", "the model refused this input: Found unknown categories ['pilot']"),
            "married": (None, "field 'married' cannot be null"),
            "age": (41.5, "field 'age' must be an integer, got a number 41.5"),
            "education": (3, "field 'education' must be a string, got a number 3"),
        }
        for field, (value, message) in bad.items():
            refused = client.post("/predict", json={**manifest.example, field: value})
            assert message in error(refused), field


def test_one_refused_request_fails_alone_in_a_batch(tabular: dict[str, Any]) -> None:
    app = app_for(tabular["store"], "census:1")
    good = app.service.model.manifest.example  # type: ignore[union-attr]
    bodies = [good, good, {**good, "job": "astronaut"}, good, [good, good]]
    answers = post(app, bodies)
    assert [a.status_code for a in answers] == [200, 200, 422, 200, 200]
    assert "astronaut" in error(answers[2])


# -- histogram gradient boosting on category columns -------------------------------------


def test_hist_gradient_boosting_on_categories(tabular: dict[str, Any]) -> None:
    model, data = tabular["hgb"]
    app = app_for(tabular["store"], "hgb:1")
    schema = app.service.model.manifest.input_schema  # type: ignore[union-attr]
    assert schema["properties"]["job"]["type"] == ["string", "null"]  # HGB takes NaN natively
    assert schema["properties"]["age"]["type"] == ["integer", "null"]
    query = pd.concat([data.head(20), data.head(5).assign(job=None, hours_per_week=None)])
    answers = [a.json() for a in post(app, records(query))]
    reference = model.predict_proba(query.astype(data.dtypes.to_dict()))
    assert probabilities(answers, list(model.classes_)).tolist() == reference.tolist()
    unseen = post(app, [{**records(data.head(1))[0], "job": "astronaut"}])[0].json()
    as_missing = model.predict_proba(data.head(1).assign(job=None).astype(data.dtypes.to_dict()))
    assert list(unseen["probabilities"].values()) == as_missing[0].tolist()  # HGB's own rule
