"""XGBoost, LightGBM and CatBoost, through their scikit-learn APIs and their native
objects: trained once per module, saved with save_model, served in-process; every answer
equals the in-process prediction on the same rows, rows with nulls included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipml
from shipml.store import Store, parse_reference
from tests.flavour_support import app_for, error, post, probabilities, records, using_store

pytestmark = pytest.mark.slow
ROWS = 400
CLASSES = ["bronze", "gold", "silver"]


def table(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Five numbers (one with missing values, the first row among them) and a category."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(ROWS, 5)), columns=[f"x{i}" for i in range(5)])
    frame["shop"] = pd.Categorical(rng.choice(["a", "b", "c"], ROWS))
    score = frame["x0"] + frame["x1"] - frame["x2"] + (frame["shop"] == "b") * 1.0
    frame.loc[rng.random(ROWS) < 0.1, "x3"] = np.nan
    frame.loc[0, "x3"] = np.nan
    labels = np.digitize(score, [-0.5, 0.5])  # three classes
    return frame, labels, score.to_numpy() + rng.normal(0, 0.1, ROWS)


FRAME, LABELS, TARGET = table()
QUERY = pd.concat([FRAME.head(20), FRAME.head(6).assign(x0=np.nan, x4=np.nan)])


def xgboost_models() -> dict[str, tuple[Any, pd.DataFrame]]:
    import xgboost as xgb

    clf = xgb.XGBClassifier(n_estimators=15, max_depth=3, enable_categorical=True, n_jobs=1)
    reg = xgb.XGBRegressor(n_estimators=15, max_depth=3, enable_categorical=True, n_jobs=1)
    train = xgb.DMatrix(FRAME, label=LABELS, enable_categorical=True)
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1},
        train,
        num_boost_round=10,
    )
    binary = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(FRAME, label=LABELS == 2, enable_categorical=True),
        num_boost_round=10,
    )
    return {
        "xgb-classifier": (clf.fit(FRAME, LABELS), FRAME),
        "xgb-regressor": (reg.fit(FRAME, TARGET), FRAME),
        "xgb-booster": (booster, FRAME),
        "xgb-binary-booster": (binary, FRAME),
    }


def lightgbm_models() -> dict[str, tuple[Any, pd.DataFrame]]:
    import lightgbm as lgb

    named = np.array(CLASSES)[LABELS]  # string labels
    options = {"n_estimators": 15, "verbose": -1, "n_jobs": 1}
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lgb.Dataset(FRAME, label=LABELS == 2),
        num_boost_round=10,
    )
    return {
        "lgb-classifier": (lgb.LGBMClassifier(**options).fit(FRAME, named), FRAME),
        "lgb-regressor": (lgb.LGBMRegressor(**options).fit(FRAME, TARGET), FRAME),
        "lgb-booster": (booster, FRAME),
    }


def catboost_models() -> dict[str, tuple[Any, pd.DataFrame]]:
    import catboost as cb

    data = FRAME.assign(shop=FRAME["shop"].astype(str))  # CatBoost takes strings
    named = np.array(CLASSES)[LABELS]
    options = {
        "iterations": 15,
        "verbose": 0,
        "thread_count": 1,
        "cat_features": ["shop"],
        "allow_writing_files": False,  # no catboost_info/ in the working folder
    }
    plain = cb.CatBoost({**options, "loss_function": "RMSE"})
    return {
        "cb-classifier": (cb.CatBoostClassifier(**options).fit(data, named), data),
        "cb-regressor": (cb.CatBoostRegressor(**options).fit(data, TARGET), data),
        "cb-native": (plain.fit(data, TARGET), data),
    }


TRAINERS: dict[str, Callable[[], dict[str, tuple[Any, pd.DataFrame]]]] = {
    "xgboost": xgboost_models,
    "lightgbm": lightgbm_models,
    "catboost": catboost_models,
}
NAMES = [
    ("xgboost", "xgb-classifier"),
    ("xgboost", "xgb-regressor"),
    ("xgboost", "xgb-booster"),
    ("xgboost", "xgb-binary-booster"),
    ("lightgbm", "lgb-classifier"),
    ("lightgbm", "lgb-regressor"),
    ("lightgbm", "lgb-booster"),
    ("catboost", "cb-classifier"),
    ("catboost", "cb-regressor"),
    ("catboost", "cb-native"),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, Any]]:
    """Every model, trained once and saved into one store for the module."""
    folder = tmp_path_factory.mktemp("boosting-store")
    models: dict[str, Any] = {}
    with using_store(folder) as store:
        for trainer in TRAINERS.values():
            for name, (model, data) in trainer().items():
                shipml.save_model(model, training_data=data, name=name)
                models[name] = (model, data)
    return store, models


def expected(model: Any, data: pd.DataFrame) -> tuple[str, np.ndarray]:
    """What the model answers in-process, the way its library is used directly."""
    module = type(model).__module__.split(".")[0]
    if (
        module == "xgboost"
        and not hasattr(model, "predict_proba")
        and type(model).__name__ == "Booster"
    ):
        import xgboost as xgb

        out = model.predict(xgb.DMatrix(data, enable_categorical=True))
        return ("proba", np.column_stack([1 - out, out]) if out.ndim == 1 else out)
    if module == "lightgbm" and type(model).__name__ == "Booster":
        out = model.predict(data)
        return ("proba", np.column_stack([1 - out, out]))
    if type(model).__name__ == "CatBoost":
        return ("value", model.predict(data))
    if hasattr(model, "predict_proba"):
        return ("proba", model.predict_proba(data))
    return ("value", model.predict(data))


@pytest.mark.parametrize(("library", "name"), NAMES, ids=[n for _, n in NAMES])
def test_answers_equal_the_in_process_prediction(
    published: tuple[Store, dict[str, Any]], library: str, name: str
) -> None:
    store, models = published
    model, data = models[name]
    manifest = store.fetch(parse_reference(f"{name}:1")).manifest
    assert manifest.contract == library and manifest.framework["name"] == library
    assert manifest.libraries[library] and library in manifest.flavour["packages"]
    assert manifest.example is not None and None not in manifest.example.values()
    app = app_for(store, f"{name}:1")
    query = QUERY.assign(shop=QUERY["shop"].astype(str)) if library == "catboost" else QUERY
    if library == "catboost":
        query = query.astype(data.dtypes.to_dict())
    answers = [r.json() for r in post(app, records(query))]
    kind, reference = expected(model, query)
    if kind == "proba":
        classes = app.service.scorer.classes  # type: ignore[union-attr]
        got = probabilities(answers, classes)
        np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-7)
        assert [a["label"] for a in answers] == [classes[i] for i in reference.argmax(axis=1)]
    else:
        np.testing.assert_allclose([a["prediction"] for a in answers], reference, rtol=1e-6)


@pytest.mark.parametrize(("library", "name"), NAMES, ids=[n for _, n in NAMES])
def test_every_bad_record_gets_its_422(
    published: tuple[Store, dict[str, Any]], library: str, name: str
) -> None:
    store, _ = published
    app = app_for(store, f"{name}:1")
    good = app.service.model.manifest.example  # type: ignore[union-attr]
    bad = [
        ({**good, "x0": "high"}, "field 'x0' must be a number, got a string 'high'"),
        ({k: v for k, v in good.items() if k != "x1"}, "missing field 'x1'"),
        ({**good, "x9": 1.0}, "unknown field 'x9'"),
        ({**good, "shop": 3}, "field 'shop' must be a string"),
    ]
    if library == "catboost":  # categorical features take no missing value
        bad.append(({**good, "shop": None}, "field 'shop' cannot be null"))
    answers = post(app, [good, *(body for body, _ in bad)])
    assert answers[0].status_code == 200
    for answer, (_, message) in zip(answers[1:], bad, strict=True):
        assert message in error(answer)


def test_an_unseen_category_follows_the_model(published: tuple[Store, dict[str, Any]]) -> None:
    """XGBoost refuses a category it never saw (422 with its message, the other requests of
    the batch answered); LightGBM treats it as missing, as it does in-process."""
    store, models = published
    xgb_app = app_for(store, "xgb-classifier:1")
    good = xgb_app.service.model.manifest.example  # type: ignore[union-attr]
    answers = post(xgb_app, [good, {**good, "shop": "zz"}, good])
    assert [a.status_code for a in answers] == [200, 422, 200]
    assert "the model refused this input" in error(answers[1])
    assert "category not in the training set" in error(answers[1])
    lgb_app = app_for(store, "lgb-classifier:1")
    answer = post(lgb_app, [{**good, "shop": "zz"}])[0].json()
    model, _ = models["lgb-classifier"]
    unseen = pd.DataFrame([{**good, "shop": None}]).astype(FRAME.dtypes.to_dict())
    assert list(answer["probabilities"].values()) == model.predict_proba(unseen)[0].tolist()


def test_images_get_xgboost_without_nvidia_and_the_pins(
    published: tuple[Store, dict[str, Any]], tmp_path: Path
) -> None:
    from shipml.image.requirements import image_requirements, no_deps_packages

    store, _ = published
    manifest = store.fetch(parse_reference("xgb-classifier:1")).manifest
    lines = image_requirements(manifest, None)
    assert f"xgboost=={manifest.libraries['xgboost']}" in lines
    assert f"scikit-learn=={manifest.libraries['scikit-learn']}" in lines
    assert f"pandas=={manifest.libraries['pandas']}" in lines
    assert no_deps_packages(manifest) == ["xgboost"]
    assert not any("nvidia" in line for line in lines)
    cat = store.fetch(parse_reference("cb-classifier:1")).manifest
    assert no_deps_packages(cat) == ["catboost"]
    assert {"numpy", "scipy", "six"} <= set(image_requirements(cat, None)) | {
        line.split("==")[0] for line in image_requirements(cat, None)
    }


def native_files(folder: Path) -> dict[str, tuple[Path, Callable[[np.ndarray], np.ndarray]]]:
    """Each library's own model file, saved as its docs say, and its own prediction."""
    import catboost
    import lightgbm
    import xgboost

    x, y = FRAME[NUMBERS].to_numpy(), LABELS
    booster = xgboost.XGBClassifier(n_estimators=8).fit(x, y).get_booster()
    booster.save_model(folder / "model.json")
    booster.save_model(folder / "model.ubj")
    lgbm = lightgbm.LGBMClassifier(n_estimators=8, verbose=-1).fit(x, y).booster_
    lgbm.save_model(folder / "model.txt")
    # allow_writing_files=False: no catboost_info/ folder in the working directory
    cat = catboost.CatBoostClassifier(iterations=8, verbose=False, allow_writing_files=False)
    cat.fit(x, y)
    cat.save_model(str(folder / "model.cbm"))
    matrix = xgboost.DMatrix
    return {
        "model.json": (folder / "model.json", lambda q: booster.predict(matrix(q))),
        "model.ubj": (folder / "model.ubj", lambda q: booster.predict(matrix(q))),
        "model.txt": (folder / "model.txt", lgbm.predict),
        "model.cbm": (folder / "model.cbm", lambda q: cat.predict(q, "Probability")),
    }


NUMBERS = ["x0", "x1", "x2", "x3", "x4"]


@pytest.mark.parametrize("file", ["model.json", "model.ubj", "model.txt", "model.cbm"])
def test_a_libraries_own_model_file_is_saved_and_served_as_a_model(
    tmp_path: Path, file: str
) -> None:
    from shipml.scoring.loader import open_model_file
    from shipml.serving.app import create_app
    from shipml.serving.settings import ServeSettings

    path, predicted = native_files(tmp_path)[file]
    # a file says no more than its feature count; missing values are found by probing
    # (a row of zeros with each field missing): these libraries take them natively
    query = QUERY[NUMBERS].to_numpy()
    assert np.isnan(query).any()
    with using_store(tmp_path / "store") as store:
        reference = shipml.save_model(str(path), name="native")
    bare = create_app(ServeSettings(model=str(path)), lambda: open_model_file(path))
    bare.service.load_now()  # `shipml serve model.json`: the file itself, no store
    for app in (app_for(store, reference), bare):
        names = app.service.model.manifest.input_schema["required"]  # type: ignore[union-attr]
        rows = [
            {name: None if np.isnan(v) else float(v) for name, v in zip(names, row, strict=True)}
            for row in query
        ]
        answers = [r.json() for r in post(app, rows)]
        got = probabilities(answers, [0, 1, 2])
        np.testing.assert_allclose(got, predicted(query), rtol=1e-6, atol=1e-7)
