"""What save_model makes of training data that is not exactly what the model was fitted
on, and of models that could not answer once served: decided at save time, with a
message, instead of a service that never becomes ready."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import shipml
from shipml.errors import TrainingError
from shipml.store import Store, parse_reference
from tests.flavour_support import app_for, post

FRAME = pd.DataFrame({"a": np.linspace(-1, 1, 40), "b": np.tile([0.0, 1.0], 20)})
LABELS = (FRAME["a"] > 0).astype(int)
MODEL = LogisticRegression().fit(FRAME, LABELS)


def schema_of(ref: str) -> list[str]:
    manifest = Store().fetch(parse_reference(ref)).manifest
    assert manifest.input_schema is not None
    return list(manifest.input_schema["required"])


def test_a_numpy_copy_of_the_fitted_frame_gets_the_models_column_names() -> None:
    ref = shipml.save_model(MODEL, training_data=FRAME.to_numpy(), name="values")
    assert schema_of(ref) == ["a", "b"]


def test_a_frame_with_more_columns_is_narrowed_to_the_models_own() -> None:
    with_target = FRAME.assign(label=LABELS)[["label", "b", "a"]]
    ref = shipml.save_model(MODEL, training_data=with_target, name="narrowed")
    assert schema_of(ref) == ["a", "b"]


def test_a_frame_lacking_the_models_columns_is_refused_with_the_models_message() -> None:
    with pytest.raises(TrainingError, match="cannot answer its own example.*feature names"):
        shipml.save_model(MODEL, training_data=FRAME[["a"]], name="lacking")


def test_a_wrapped_lightgbm_with_sanitised_names_keeps_the_frame() -> None:
    import lightgbm
    from sklearn.model_selection import GridSearchCV

    frame = FRAME.rename(columns={"a": "a b"})
    search = GridSearchCV(
        lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1),
        {"learning_rate": [0.1, 0.2]},
        cv=2,
    ).fit(frame, LABELS)  # feature_names_in_: ["a_b", "b"]
    ref = shipml.save_model(search, training_data=frame, name="wrapped")
    assert schema_of(ref) == ["a b", "b"]


def test_feature_names_that_are_not_the_models_are_refused() -> None:
    with pytest.raises(TrainingError, match="not the columns the model was fitted on"):
        shipml.save_model(
            MODEL, training_data=FRAME.to_numpy(), feature_names=["x", "y"], name="renamed"
        )


def test_a_model_that_refuses_its_own_example_is_refused_at_save() -> None:
    class Picky:
        """Fitted on two columns, refuses everything: the service could never warm up."""

        classes_ = np.array([0, 1])

        def predict_proba(self, data: object) -> np.ndarray:
            raise ValueError("expected 3 features, got 2")

        def predict(self, data: object) -> np.ndarray:
            raise ValueError("expected 3 features, got 2")

    with pytest.raises(TrainingError, match=r"cannot answer its own example.*3 features"):
        shipml.save_model(Picky(), training_data=FRAME, name="picky")


def test_a_formula_calling_a_script_function_is_refused_with_why() -> None:
    import statsmodels.formula.api as smf

    def double_it(x: float) -> float:
        return 2 * x

    data = FRAME.assign(y=FRAME["a"] * 3 + FRAME["b"])
    results = smf.ols("y ~ double_it(a) + b", data=data).fit()
    # statsmodels evaluates the formula again when the results are copied or loaded,
    # where the script's function does not exist.
    with pytest.raises(TrainingError, match=r"evaluates its formula .*double_it"):
        shipml.save_model(results, training_data=data, name="formula")


def test_a_text_pipeline_fitted_on_a_series_takes_one_field_as_a_1d_column() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    from tests.flavour_support import app_for, post

    texts = pd.Series(["good film", "bad plot", "great", "awful"] * 10, name="review")
    labels = np.array(["pos", "neg", "pos", "neg"] * 10)
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    ref = shipml.save_model(model, training_data=texts, name="reviews")
    manifest = Store().fetch(parse_reference(ref)).manifest
    assert manifest.input_schema is not None and manifest.input_schema["x-vector"] is True
    assert schema_of(ref) == ["review"] and manifest.example == {"review": "good film"}
    (answer,) = post(app_for(Store(), ref), [{"review": "great plot"}])
    expected = model.predict_proba(pd.Series(["great plot"]))[0]
    assert answer.json()["probabilities"] == dict(
        zip(["neg", "pos"], expected.tolist(), strict=True)
    )
    # a list of texts (no name) is one field called "input"
    listed = shipml.save_model(model, training_data=texts.tolist(), name="listed")
    assert schema_of(listed) == ["input"]
    # a list of texts with an example naming its one field: the same 1-D column, and the
    # version keeps a monitoring reference of the texts
    named = shipml.save_model(
        model, training_data=texts.tolist(), input_example={"text": "fine"}, name="named"
    )
    kept = Store().fetch(parse_reference(named)).manifest
    assert kept.input_schema is not None and kept.input_schema["x-vector"] is True
    assert "reference" in kept.data
    (answer,) = post(app_for(Store(), named), [{"text": "great plot"}])
    assert answer.json()["probabilities"] == dict(
        zip(["neg", "pos"], expected.tolist(), strict=True)
    )


def test_a_multi_output_classifier_answers_a_label_per_output() -> None:
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.tree import DecisionTreeClassifier

    from tests.flavour_support import app_for, post

    targets = np.column_stack([LABELS, np.where(FRAME["b"] > 0, "on", "off")])
    model = MultiOutputClassifier(DecisionTreeClassifier()).fit(FRAME, targets)
    ref = shipml.save_model(model, training_data=FRAME, name="multi")
    app = app_for(Store(), ref)
    (answer,) = post(app, [{"a": 0.5, "b": 1.0}])
    expected = model.predict(pd.DataFrame({"a": [0.5], "b": [1.0]}))[0].tolist()
    assert answer.json() == {"prediction": expected}
    # the output schema (/info, /openapi.json, /v2 metadata) says so: two labels, any type
    assert app.service.scorer.output_schema["properties"]["prediction"] == {
        "type": "array",
        "items": {},
        "minItems": 2,
        "maxItems": 2,
    }


def test_lightgbm_keeps_the_frames_own_column_names() -> None:
    import lightgbm

    frame = FRAME.rename(columns={"a": "a b"})
    model = lightgbm.LGBMClassifier(n_estimators=3, min_child_samples=2, verbose=-1)
    model.fit(frame, LABELS)  # its feature_names_in_ says "a_b"
    ref = shipml.save_model(model, training_data=frame, name="spaces")
    assert schema_of(ref) == ["a b", "b"]


class Selector(BaseEstimator, TransformerMixin):  # the notebooks' DataFrameSelector
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def fit(self, frame: pd.DataFrame, y: object = None) -> Selector:
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.names].to_numpy()


def test_a_pipeline_that_selects_columns_by_name_gets_the_frame_it_was_fitted_on() -> None:
    # its first step keeps no column names (no feature_names_in_): only plain rows fail
    model = make_pipeline(Selector(["b", "a"]), LogisticRegression()).fit(FRAME, LABELS)
    assert not hasattr(model, "feature_names_in_")
    ref = shipml.save_model(model, training_data=FRAME, name="selected")
    loaded = Store().fetch(parse_reference(ref))
    assert loaded.manifest.flavour["frame"] is True
    (answer,) = post(app_for(Store(), ref), [FRAME.iloc[:3].to_dict(orient="records")])
    expected = model.predict_proba(FRAME.iloc[:3])[:, 1].tolist()
    assert [row["probabilities"]["1"] for row in answer.json()] == expected
    plain = LogisticRegression().fit(FRAME.to_numpy(), LABELS)  # rows answer: no frame
    rows = Store().fetch(parse_reference(shipml.save_model(plain, training_data=FRAME, name="r")))
    assert rows.manifest.flavour["frame"] is False


@pytest.mark.parametrize("kind", ["PCA", "Pipeline", "DBSCAN"])
def test_a_model_that_predicts_nothing_is_refused_saying_so(kind: str) -> None:
    from sklearn.cluster import DBSCAN
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    model = {
        "PCA": lambda: PCA(1),
        "Pipeline": lambda: make_pipeline(StandardScaler()),
        "DBSCAN": DBSCAN,
    }[kind]().fit(FRAME)
    with pytest.raises(TrainingError, match=f"cannot serve this model: a {kind} has no predict"):
        shipml.save_model(model, training_data=FRAME, name="nothing")
    assert Store().models() == []


def test_scikit_learns_pandas_output_setting_goes_with_the_model() -> None:
    # set_config(transform_output="pandas") set globally (scikit-learn's plot_set_output
    # example; e.g. logan-heydt/Kaggle_competitions@6dfa15f:Wine_Quality/src/pipeline.py
    # sets it at import): a step of the user's own then
    # relies on DataFrames between steps, which a service's process never set up itself
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def with_difference(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(difference=frame["scaled__a"] - frame["scaled__b"])

    query = FRAME.iloc[:5]
    with sklearn.config_context(transform_output="pandas"):
        scaled = ColumnTransformer([("scaled", StandardScaler(), ["a", "b"])])
        model = make_pipeline(scaled, FunctionTransformer(with_difference), LogisticRegression())
        model.fit(FRAME, LABELS)
        ref = shipml.save_model(model, training_data=FRAME, name="pandas_output")
        expected = model.predict_proba(query)[:, 1].tolist()
    manifest = Store().fetch(parse_reference(ref)).manifest
    assert manifest.flavour["config"] == {"transform_output": "pandas"}
    (answer,) = post(app_for(Store(), ref), [query.to_dict(orient="records")])
    assert [row["probabilities"]["1"] for row in answer.json()] == expected
    plain = Store().fetch(parse_reference(shipml.save_model(MODEL, name="plain")))
    assert plain.manifest.flavour["config"] == {}


def test_a_model_fitted_on_a_sparse_matrix_is_described_by_its_dense_rows() -> None:
    import scipy.sparse

    matrix = scipy.sparse.random(60, 12, density=0.2, format="csr", random_state=0)
    target = np.arange(60) % 2
    model = LogisticRegression().fit(matrix, target)
    ref = shipml.save_model(model, training_data=matrix, name="sparse")
    assert schema_of(ref) == [f"f{i}" for i in range(12)]
    names = schema_of(ref)
    records = [dict(zip(names, row, strict=True)) for row in matrix[:4].toarray().tolist()]
    (answer,) = post(app_for(Store(), ref), [records])
    expected = model.predict_proba(matrix[:4])[:, 1].tolist()
    assert [row["probabilities"]["1"] for row in answer.json()] == pytest.approx(expected)
    huge = scipy.sparse.csr_matrix((200_000, 100))  # 20M values when dense: refused
    with pytest.raises(TrainingError, match=r"X\[:1000\].toarray\(\)"):
        shipml.save_model(model, training_data=huge, name="huge")


def test_training_data_as_records_is_read_as_its_columns() -> None:
    records = FRAME.to_dict(orient="records")  # what requests send
    ref = shipml.save_model(MODEL, training_data=records, name="records")
    assert schema_of(ref) == ["a", "b"]
    (answer,) = post(app_for(Store(), ref), [records[:3]])
    expected = MODEL.predict_proba(FRAME.iloc[:3])[:, 1].tolist()
    assert [row["probabilities"]["1"] for row in answer.json()] == expected


@pytest.mark.parametrize("kind", ["Series", "array", "list"])
def test_1d_training_data_of_a_model_fitted_on_one_column_is_that_column(kind: str) -> None:
    model = LogisticRegression().fit(FRAME[["a"]].to_numpy(), LABELS)  # 2-D, one column
    column = {"Series": FRAME["a"], "array": FRAME["a"].to_numpy(), "list": list(FRAME["a"])}
    ref = shipml.save_model(model, training_data=column[kind], name=f"one-{kind.lower()}")
    (name,) = schema_of(ref)
    assert name == ("a" if kind == "Series" else "input")
    (answer,) = post(app_for(Store(), ref), [[{name: 0.25}, {name: -0.5}]])
    expected = model.predict_proba([[0.25], [-0.5]])[:, 1].tolist()
    assert [row["probabilities"]["1"] for row in answer.json()] == expected
