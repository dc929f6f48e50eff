"""Models and data the repository's own tests were not written around: training code of
public projects (tests/fixtures/heldout_tabular/README.md lists them with their sources),
each trained once, saved with ``save_model`` the way the docs say, served in-process.

For every case: answers on held-out rows (nulls, unseen categories, big integers, dates
included) equal the in-process prediction; /info and /openapi.json describe each training
column (type, nullable, enum); every malformed record gets a 422 naming its field; a null
goes through exactly where the model takes a missing value; the model's own refusals
are 422s; the Open Inference Protocol answers the same. A few cases also run under a
real ``shipml serve`` and Triton's client.
"""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from openapi_spec_validator import validate

import shipml
from shipml.errors import ShipmlError
from shipml.serving.app import App
from tests.fixtures.heldout_tabular.case import Case, in_process
from tests.flavour_support import app_for, using_store
from tests.heldout_support import (
    WRONG,
    answers_as_array,
    call,
    compare,
    complete_rows,
    first_row,
    infer_body,
    plain,
    records,
    some,
    without,
)

pytestmark = [
    pytest.mark.slow,
    # the date case's own transformer (as its source wrote it) uses a deprecated accessor
    pytest.mark.filterwarnings("ignore:Series.dt.weekday is deprecated"),
]
MODULES = [
    "titanic_logreg", "tfidf_udacity", "countvec_passthrough", "xgb_categorical", "xgb_softmax",
    "catboost_lists", "heart_gridsearch", "iris_stacking", "multioutput_xgb", "glm_formula",
    "logit_arrays", "xgb_train_booster", "lgb_dataset_categorical", "transformed_target",
    "hgb_ames", "imblearn_smote", "knn_horse", "date_encoder", "petfinder_lgbm_grid",
    "digits_wide", "tfidf_calibrated_text",
]  # fmt: skip
CASES = [
    "titanic_logreg", "tfidf_udacity", "countvec_passthrough", "xgb_categorical",
    "xgb_categorical_booster", "xgb_softmax", "catboost_lists", "heart_best_estimator",
    "heart_search_object", "iris_stacking", "multioutput_xgb", "glm_formula", "logit_arrays",
    "xgb_train_booster", "lgb_dataset_categorical", "target_quantile", "target_log",
    "hgb_ames_ordinal", "hgb_ames_native", "imblearn_smote", "knn_horse", "date_encoder",
    "date_encoder_utc", "petfinder_lgbm_grid", "digits_wide", "tfidf_calibrated_text",
]  # fmt: skip
REFUSED_AT_SAVE = ["glm_formula_function"]


@dataclass
class Served:
    case: Case
    ref: str
    app: App
    info: dict[str, Any]

    @property
    def schema(self) -> dict[str, Any]:
        return dict(self.info["input_schema"])

    @property
    def names(self) -> list[str]:
        return list(self.schema["required"])

    def nullable(self, name: str) -> bool:
        return "null" in self.schema["properties"][name]["type"]

    def classes(self) -> list[Any] | None:
        output = self.info["output_schema"]["properties"]
        if "probabilities" not in output:
            return None
        # a label is null where the model's probabilities are not numbers
        return [c for c in output["label"]["enum"] if c is not None]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case trained, saved and served in-process once; errors kept per case."""
    folder = tmp_path_factory.mktemp("heldout")
    found: dict[str, Any] = {"store": folder / "store"}
    with using_store(folder / "store") as store:
        for module in MODULES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the training code's own warnings
                built = importlib.import_module(f"tests.fixtures.heldout_tabular.{module}").cases()
            for case in built:
                try:
                    ref = shipml.save_model(
                        case.model,
                        training_data=case.training_data,
                        feature_names=case.feature_names,
                        name=case.name.replace("_", "-"),
                    )
                    app = app_for(store, ref)
                    (info,) = call(app, [("GET", "/info", None)])
                    found[case.name] = Served(case, ref, app, info.json())
                except Exception as exc:  # reported by the tests of that case
                    found[case.name] = (case, exc)
    return found


def served(trained: dict[str, Any], name: str) -> Served:
    entry = trained[name]
    if isinstance(entry, tuple):
        case, exc = entry
        if case.refused_at_save is None:
            raise AssertionError(f"{name} could not be saved or served: {exc!r}") from exc
        pytest.skip("refused at save, as it should be")
    return entry  # type: ignore[no-any-return]


def quietly(case: Case, rows: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return in_process(case, rows)


@pytest.mark.parametrize("name", REFUSED_AT_SAVE)
def test_models_shipml_cannot_serve_are_refused_at_save_saying_why(
    trained: dict[str, Any], name: str
) -> None:
    case, exc = trained[name]
    assert case.refused_at_save is not None
    assert isinstance(exc, ShipmlError) and re.search(case.refused_at_save, str(exc))


@pytest.mark.parametrize("name", CASES)
def test_held_out_rows_answer_as_in_process(trained: dict[str, Any], name: str) -> None:
    s = served(trained, name)
    recs = records(s.case.held_out, s.names)
    many, *single = call(
        s.app, [("POST", "/predict", recs)] + [("POST", "/predict", r) for r in recs]
    )
    assert many.status_code == 200, many.text
    got = answers_as_array(many.json(), s.classes())
    assert compare(s.case, got, s.case.held_out) == []
    # one request per row (batched together by the service) answers the same
    assert [r.status_code for r in single] == [200] * len(recs)
    alone = answers_as_array([r.json() for r in single], s.classes())
    np.testing.assert_allclose(alone, got, rtol=s.case.tolerance, atol=s.case.tolerance)
    # the example (warm-up, playground) is answered too
    (example,) = call(s.app, [("POST", "/predict", s.info["example"])])
    assert example.status_code == 200, example.text


def described(prop: dict[str, Any]) -> tuple[str, bool]:
    """A field of the stored input schema: its kind and whether null is allowed."""
    kinds = [prop["type"]] if isinstance(prop["type"], str) else prop["type"]
    kind = next(k for k in kinds if k != "null")
    return kind, "null" in kinds or None in prop.get("enum", [])


def documented(field: dict[str, Any]) -> tuple[str, bool, list[Any] | None, str | None]:
    """The same of a field of the OpenAPI document's Record (``anyOf`` with null when
    nullable; an enum of the values when the model refuses others)."""
    options = field.get("anyOf", [field])
    own = options[0]
    nullable = any(option.get("type") == "null" for option in options)
    if "enum" in own:
        listed: list[Any] | None = own["enum"]
        kind = {bool: "boolean", int: "integer", float: "number"}.get(
            type(listed[0]) if listed else str, "string"
        )
    else:
        listed, kind = None, own["type"]
    return kind, nullable, listed, field.get("x-dtype")


@pytest.mark.parametrize("name", CASES)
def test_the_schema_describes_each_training_column(trained: dict[str, Any], name: str) -> None:
    s = served(trained, name)
    data = s.case.training_data
    if hasattr(data, "to_frame") and getattr(data, "ndim", 2) == 1:  # a Series: one field
        data = data.to_frame()
        assert s.schema.get("x-vector") is True  # the model gets it back as a 1-D column
    (openapi,) = call(s.app, [("GET", "/openapi.json", None)])
    validate(openapi.json())
    record = openapi.json()["components"]["schemas"]["Record"]["properties"]
    assert list(record) == list(s.schema["properties"])
    for name_, prop in s.schema["properties"].items():
        kind, nullable, listed, dtype = documented(record[name_])
        assert (kind, nullable, dtype) == (*described(prop), prop.get("x-dtype")), name_
        if listed is not None:  # listed where the model refuses any other value
            known = prop.get("enum") or prop.get("x-values")
            assert listed == [v for v in known if v is not None], name_
    if not hasattr(data, "dtypes"):
        return
    for name_, prop in s.schema["properties"].items():
        column = data[name_]
        kinds = [prop["type"]] if isinstance(prop["type"], str) else prop["type"]
        kind = next(k for k in kinds if k != "null")
        dtype = column.dtype
        if str(dtype) == "category":
            categories = [c.item() if isinstance(c, np.generic) else c for c in dtype.categories]
            assert [c for c in prop["enum"] if c is not None] == categories
        elif dtype.kind == "M":
            assert (kind, prop["format"]) == ("string", "date-time")
        elif dtype.kind in "iu":
            assert kind == "integer"
        elif dtype.kind == "f":
            assert kind == "number"
        elif dtype.kind == "b":
            assert kind == "boolean"
        else:
            assert kind == "string", (name_, dtype)
        if column.isna().any():
            assert "null" in kinds, f"{name_} has missing values in training but is not nullable"


@pytest.mark.parametrize("name", CASES)
def test_every_malformed_record_gets_a_422_naming_its_field(
    trained: dict[str, Any], name: str
) -> None:
    s = served(trained, name)
    base = records(first_row(s.case.held_out), s.names)[0]
    bad: list[tuple[str, Any]] = [("zzz_unknown", {**base, "zzz_unknown": 1})]
    for field in (s.names[i] for i in some(s.names)):
        kinds = s.schema["properties"][field]["type"]
        kind = kinds if isinstance(kinds, str) else next(k for k in kinds if k != "null")
        bad.append((field, {**base, field: WRONG[kind]}))
        bad.append((field, {**base, field: [1, 2]}))
        bad.append((field, {k: v for k, v in base.items() if k != field}))
        if not s.nullable(field):
            bad.append((field, {**base, field: None}))
    answers = call(s.app, [("POST", "/predict", body) for _, body in bad])
    for (field, body), answer in zip(bad, answers, strict=True):
        assert answer.status_code == 422, (field, body, answer.text)
        assert repr(field) in answer.json()["error"]["message"], (field, answer.text)


@pytest.mark.parametrize("name", CASES)
def test_null_goes_through_exactly_where_the_model_takes_a_missing_value(
    trained: dict[str, Any], name: str
) -> None:
    s = served(trained, name)
    row = first_row(s.case.held_out)
    base = records(row, s.names)[0]
    nullable = [i for i in some(s.names) if s.nullable(s.names[i])]
    answers = call(s.app, [("POST", "/predict", {**base, s.names[i]: None}) for i in nullable])
    for i, answer in zip(nullable, answers, strict=True):
        assert answer.status_code == 200, (s.names[i], answer.text)
        got = answers_as_array([answer.json()], s.classes())
        assert compare(s.case, got, without(row, i)) == [], s.names[i]
    for i in some(s.names):
        field = s.names[i]
        dtypes = getattr(row, "dtypes", None)
        if s.nullable(field) or (hasattr(dtypes, "get") and str(dtypes.get(field)) == "bool"):
            continue
        try:
            output = quietly(s.case, without(row, i))
        except Exception:
            continue  # the model refuses a missing value there: not nullable, rightly
        assert not np.isfinite(np.asarray(output, dtype=float)).all(), (
            f"{field} is not nullable, yet the model answers a missing value there"
        )


@pytest.mark.parametrize(
    "name", [n for n in CASES if n in ("tfidf_udacity", "countvec_passthrough")]
)
def test_the_models_own_refusals_are_422(trained: dict[str, Any], name: str) -> None:
    s = served(trained, name)
    assert s.case.refused
    for record in s.case.refused:
        with pytest.raises(ValueError):
            quietly(s.case, type(s.case.held_out)([record]))  # the model refuses it in-process
    bodies = [{k: plain(v) for k, v in r.items()} for r in s.case.refused]
    answers = call(s.app, [("POST", "/predict", body) for body in bodies])
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["message"].startswith("the model refused this input")


@pytest.mark.parametrize("name", CASES)
def test_the_open_inference_protocol_answers_the_same(trained: dict[str, Any], name: str) -> None:
    s = served(trained, name)
    rows = complete_rows(s.case.held_out, s.info["example"])  # the protocol has no null
    recs = records(rows, s.names)
    model = s.ref.split(":")[0]
    metadata, answer = call(
        s.app,
        [
            ("GET", f"/v2/models/{model}", None),
            ("POST", f"/v2/models/{model}/infer", infer_body(s.schema, recs)),
        ],
    )
    assert metadata.status_code == 200, metadata.text
    inputs = {i["name"]: i["datatype"] for i in metadata.json()["inputs"]}
    # all-number models: one [N, F] matrix (per-field tensors are taken too); else per field
    assert list(inputs) in (["input"], s.names)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    for described in metadata.json()["outputs"]:  # the metadata says what the answer holds
        given = outputs[described["name"]]
        assert given["datatype"] == described["datatype"], (described, given["datatype"])
        assert [-1, *given["shape"][1:]] == described["shape"] or described["shape"] == given[
            "shape"
        ], (described, given["shape"])
    if s.classes():
        got = np.array(outputs["probabilities"]["data"], dtype=float).reshape(len(recs), -1)
    else:
        got = np.array(outputs["prediction"]["data"], dtype=float).reshape(len(recs), -1)
        got = got[:, 0] if got.shape[1] == 1 else got
    assert compare(s.case, got, rows) == []


REAL = ["xgb_softmax", "heart_best_estimator"]


def test_real_servers_answer_records_and_triton_clients_alike(
    trained: dict[str, Any], serve: Any
) -> None:
    """A few cases under real ``shipml serve`` processes (started together): /predict on
    held-out rows, and Triton's own client in JSON mode, equal the in-process answers."""
    import tritonclient.http as triton

    env = {"SHIPML_STORE": str(trained["store"])}
    cases = [served(trained, name) for name in REAL]
    servers = [serve(s.ref, "--workers", "1", env=env, wait=False) for s in cases]
    for s, server in zip(cases, servers, strict=True):
        server.wait_ready()
        recs = records(s.case.held_out, s.names)
        with server.client() as client:
            answer = client.post("/predict", json=recs)
        assert answer.status_code == 200, answer.text
        assert compare(s.case, answers_as_array(answer.json(), s.classes()), s.case.held_out) == []
        rows = complete_rows(s.case.held_out, s.info["example"])
        body = infer_body(s.schema, records(rows, s.names))
        inputs = []
        for tensor in body["inputs"]:
            dtype = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}.get(
                tensor["datatype"], object
            )
            item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            item.set_data_from_numpy(np.array(tensor["data"], dtype=dtype), binary_data=False)
            inputs.append(item)
        key = "probabilities" if s.classes() else "prediction"
        client = triton.InferenceServerClient(server.url.removeprefix("http://"))
        try:
            result = client.infer(
                s.ref.split(":")[0],
                inputs,
                outputs=[triton.InferRequestedOutput(key, binary_data=False)],
            )
        finally:
            client.close()
        got = np.asarray(result.as_numpy(key), dtype=float)
        assert (
            compare(
                s.case,
                got.reshape(len(body["inputs"][0]["data"]), -1).squeeze(-1)
                if not s.classes()
                else got,
                rows,
            )
            == []
        )
