"""statsmodels results through the formula API and through arrays: trained once, served
in-process; answers equal ``results.predict`` and a formula's refusal is a 422."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipml
from tests.fixtures.census.data import census
from tests.flavour_support import app_for, error, post, records, using_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with using_store(tmp_path_factory.mktemp("statsmodels")) as store:
        formula, arrays = statsmodels_models(census()[0])
    return {"store": store, "ols-formula": formula, "ols-arrays": arrays}


def statsmodels_models(frame: pd.DataFrame) -> tuple[Any, Any]:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = frame.dropna().assign(gain=lambda f: f["capital_gain"] / 1000)
    data["y"] = 2 * data["age"] - data["gain"] + (data["job"] == "exec") * 5.0
    data = data[["y", "age", "gain", "job"]].reset_index(drop=True)
    formula = smf.ols("y ~ age + np.log1p(gain) + C(job)", data=data).fit()
    shipml.save_model(formula, training_data=data, name="ols-formula")
    design = data[["age", "gain"]].astype(float)
    arrays = sm.OLS(data["y"], sm.add_constant(design)).fit()
    shipml.save_model(arrays, training_data=design, name="ols-arrays")
    return (formula, data), (arrays, design)


def test_statsmodels_formula_takes_the_raw_columns(published: dict[str, Any]) -> None:
    results, data = published["ols-formula"]
    app = app_for(published["store"], "ols-formula:1")
    schema = app.service.model.manifest.input_schema  # type: ignore[union-attr]
    assert list(schema["properties"]) == ["age", "gain", "job"]  # the outcome y is not asked
    query = data.drop(columns="y").head(10)
    answers = [a.json() for a in post(app, records(query))]
    assert [a["prediction"] for a in answers] == results.predict(query).tolist()
    refused = post(app, [{**records(query.head(1))[0], "job": "astronaut"}])[0]
    assert "astronaut" in error(refused)


def test_statsmodels_arrays_without_the_constant(published: dict[str, Any]) -> None:
    import statsmodels.api as sm

    results, design = published["ols-arrays"]
    app = app_for(published["store"], "ols-arrays:1")
    schema = app.service.model.manifest.input_schema  # type: ignore[union-attr]
    assert list(schema["properties"]) == ["age", "gain"]
    answers = [a.json() for a in post(app, records(design.head(10)))]
    expected = results.predict(sm.add_constant(design.head(10), has_constant="add"))
    np.testing.assert_allclose([a["prediction"] for a in answers], expected, rtol=1e-12)
    assert "cannot be null" in error(post(app, [{"age": None, "gain": 1.0}])[0])
