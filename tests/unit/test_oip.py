"""The Open Inference Protocol face in-process: tritonclient's own request encoder and
response decoder against the ASGI app, every datatype, both tensor forms, ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from sklearn.linear_model import LinearRegression, LogisticRegression

import shipml
from shipml.scoring.convert import convert_version, load_sample
from shipml.serving.app import App, create_app
from shipml.serving.oip import result_tensors
from shipml.serving.settings import ServeSettings
from shipml.serving.tensors import TensorError, deserialize_bytes, serialize_bytes
from shipml.store import Store, parse_reference
from tests.conftest import IRIS_FEATURES
from tests.unit.test_app import call, make_app

ROWS = np.array([[0.0, 1.0], [3.0, 2.0], [7.0, 5.0], [100.0, 1.0]])


@pytest.fixture
def app() -> App:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    model = LinearRegression().fit(x, 2 * x[:, 0] - x[:, 1] + 0.5)
    return make_app(shipml.save_model(model, training_data=x, feature_names=["a", "b"], name="reg"))


def infer(
    app: App,
    inputs: list[triton.InferInput],
    outputs: list[triton.InferRequestedOutput] | None = None,
    path: str = "/v2/models/reg/infer",
    **options: Any,
) -> Any:
    """POST the body tritonclient would send; decode the answer as tritonclient would."""
    body, json_size = triton.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, **options
    )
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    answer = call(app, "POST", path, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    length = answer.headers.get("inference-header-content-length")
    assert (length is not None) == (answer.headers["content-type"] == "application/octet-stream")
    return triton.InferenceServerClient.parse_response_body(
        answer.content, header_length=int(length) if length else None
    )


def predicted(app: App, rows: np.ndarray, names: list[str]) -> list[Any]:
    records = [dict(zip(names, row, strict=True)) for row in rows.tolist()]
    answer = call(app, "POST", "/predict", json=records)
    assert answer.status_code == 200, answer.text
    return answer.json()


def tensor(name: str, array: np.ndarray, binary: bool = True) -> triton.InferInput:
    datatype = "BYTES" if array.dtype.kind in "OU" else triton_datatype(array)
    return triton.InferInput(name, list(array.shape), datatype).set_data_from_numpy(
        array, binary_data=binary
    )


def triton_datatype(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return str(np_to_triton_dtype(array.dtype))


SIGNED = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8]


@pytest.mark.parametrize("dtype", [*SIGNED, np.uint64, np.uint32, np.uint16, np.uint8])
@pytest.mark.parametrize("binary", [True, False])
def test_every_numeric_datatype_answers_like_predict(app: App, dtype: Any, binary: bool) -> None:
    rows = ROWS.astype(dtype)
    result = infer(app, [tensor("input", rows, binary)])
    expected = [r["prediction"] for r in predicted(app, rows.astype(np.float64), ["a", "b"])]
    assert result.as_numpy("prediction").tolist() == expected
    assert result.get_response()["outputs"][0]["datatype"] == "FP64"


def test_one_tensor_per_feature_in_any_order_and_shape(app: App) -> None:
    a, b = ROWS[:, 0].copy(), ROWS[:, 1:].astype(np.int64)  # [N] FP64 and [N, 1] INT64
    result = infer(app, [tensor("b", b), tensor("a", a, binary=False)])
    expected = [r["prediction"] for r in predicted(app, ROWS, ["a", "b"])]
    assert result.as_numpy("prediction").tolist() == expected


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("input", ROWS.astype(bool))], "must be numbers"),
        ([tensor("input", np.array([["x", "y"]], dtype=object))], "got BYTES"),
        ([tensor("input", np.array([[np.nan, 1.0]]))], "NaN or infinity (row 0)"),
        ([tensor("input", np.array([[1.0, np.inf]]))], "column 1 (b) holds NaN or infinity"),
        ([tensor("a", ROWS[:, 0].copy())], "missing input 'b'"),
        ([tensor("a", ROWS[:, 0].copy()), tensor("c", ROWS[:, 1].copy())], "unknown input 'c'"),
        ([tensor("a", ROWS[:3, 0].copy()), tensor("b", ROWS[:, 1].copy())], "a: 3, b: 4"),
        ([tensor("input", np.zeros((0, 2)))], "hold no rows"),
        ([tensor("a", ROWS[:, :1].T.copy()), tensor("b", ROWS[:, 1].copy())], "[N] or [N, 1]"),
    ],
)
def test_inputs_that_do_not_fit_are_400_naming_the_tensor(
    app: App, inputs: list[triton.InferInput], message: str
) -> None:
    body, size = triton.InferenceServerClient.generate_request_body(inputs)
    headers = {} if size is None else {"Inference-Header-Content-Length": str(size)}
    answer = call(app, "POST", "/v2/models/reg/infer", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("data", "datatype", "message"),
    [
        ([1.5, 2], "INT64", "non-integers"),
        ([300, 1], "INT8", "outside the range of INT8"),
        ([-1, 1], "UINT32", "outside the range"),
        ([1e300, 1], "FP32", "too large for FP32"),
        ([True, False], "FP64", "must be numbers, got booleans"),
        (["1", "2"], "FP64", "must be numbers, got strings"),
        ([[1, 2], [3]], "FP64", "not a regular array"),
        ([1, 2], "BF16", "BF16 has no numpy type"),
        ([1, 2], "FP128", "is not supported"),
        ([1, 2, 3], "FP64", "needs 2 values, its data holds 3"),
        ([1, None], "FP64", "mixed or null"),
    ],
)
def test_json_data_is_checked_against_its_datatype(
    app: App, data: Any, datatype: str, message: str
) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": datatype, "data": data}]}
    answer = call(app, "POST", "/v2/models/reg/infer", json=body)
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_integral_floats_fit_integer_types_and_features(app: App) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "INT64", "data": [3.0, 2]}]}
    answer = call(app, "POST", "/v2/models/reg/infer", json=body).json()
    assert answer["outputs"][0]["data"] == [
        r["prediction"] for r in predicted(app, ROWS[1:2], ["a", "b"])
    ]


def test_bytes_codec_round_trip_and_truncation() -> None:
    values = ["", "é", "a" * 300, "x:y"]
    raw = serialize_bytes(values)
    assert deserialize_bytes("t", memoryview(raw)) == values
    with pytest.raises(TensorError, match="ends inside an element's length"):
        deserialize_bytes("t", memoryview(raw[:2]))
    with pytest.raises(TensorError, match="says 2 bytes but only 1 remain"):
        deserialize_bytes("t", memoryview(serialize_bytes(["é"])[:-1]))
    with pytest.raises(TensorError, match="not UTF-8"):
        deserialize_bytes("t", memoryview(b"\x01\x00\x00\x00\xff"))


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([1.5, 2.5], [("output", "FP64", [2])]),
        (
            {"predictions": [1, 2, 3], "model": "m"},
            [("predictions", "INT64", [3]), ("model", "BYTES", [1])],
        ),
        ("hello", [("output", "BYTES", [1])]),
        ([[1, 2], [3]], [("output", "BYTES", [2])]),  # ragged: each row as its JSON text
        (
            [{"p": {"x": 0.2, "y": 0.8}, "ok": True}],
            [("p", "FP64", [1, 2]), ("p_keys", "BYTES", [2]), ("ok", "BOOL", [1])],
        ),
        ([{"a": None}, {"a": {"k": 1}}], [("a", "BYTES", [2])]),
    ],
)
def test_answers_of_any_contract_become_tensors(results: Any, expected: list[Any]) -> None:
    tensors = result_tensors(results)
    assert [(t.name, t.datatype, list(t.array.shape)) for t in tensors] == expected
    if expected[0][0] == "a":
        assert tensors[0].array.tolist() == ["null", '{"k":1}']


def test_onnx_scorer_takes_the_tensor_as_a_table(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    ref = shipml.save_model(
        model, training_data=data.data, feature_names=IRIS_FEATURES, name="iris"
    )
    store = Store()
    local = store.fetch(parse_reference(ref))
    converted, _ = convert_version(local, load_sample(store, local.manifest), tmp_path / "onnx")
    app = create_app(ServeSettings(model=ref), lambda: converted)
    app.service.load_now()
    assert app.service.info()["engine"] == "onnxruntime"
    rows = data.data[::10].astype(np.float32)
    result = infer(app, [tensor("input", rows)], path="/v2/models/iris/infer")
    expected = predicted(app, rows.astype(np.float64), IRIS_FEATURES)
    assert result.as_numpy("label").astype(str).tolist() == [r["label"] for r in expected]
    probabilities = [list(r["probabilities"].values()) for r in expected]
    assert result.as_numpy("probabilities").tolist() == probabilities
    huge = tensor("input", np.full((1, 4), 1e39))
    body, size = triton.InferenceServerClient.generate_request_body([huge])
    answer = call(
        app,
        "POST",
        "/v2/models/iris/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(size)},
    )
    assert answer.status_code == 400 and "float32" in answer.json()["error"]


def test_errors_are_the_protocols_and_keep_the_request_id(app: App) -> None:
    for method, path, status in [
        ("GET", "/v2/models/other", 404),
        ("GET", "/v2/models/reg/versions/2", 404),
        ("GET", "/v2/models/reg/versions/2/ready", 404),
        ("POST", "/v2/models/reg/versions/7/infer", 404),
        ("DELETE", "/v2/models/reg/infer", 405),
        ("POST", "/v2/models/reg/infer", 400),
        ("GET", "/v2/repository/index", 404),
    ]:
        answer = call(app, method, path, headers={"X-Request-ID": "req-1"})
        assert answer.status_code == status, (path, answer.text)
        assert isinstance(answer.json()["error"], str) and answer.json()["error"]
        assert answer.headers["x-request-id"] == "req-1"
    body = orjson.dumps(
        {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    )
    ok = call(app, "POST", "/v2/models/reg/versions/1/infer", content=body)
    assert ok.status_code == 200 and ok.json()["id"] == ok.headers["x-request-id"]


def test_requests_over_the_body_limit_are_413_in_the_protocols_shape() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    ref = shipml.save_model(LinearRegression().fit(x, x[:, 0]), training_data=x, name="small")
    app = make_app(ref, max_body_bytes=64)
    answer = call(app, "POST", "/v2/models/small/infer", content=b"x" * 65)
    assert answer.status_code == 413 and "larger than 64 bytes" in answer.json()["error"]


def test_json_outputs_when_asked(app: App) -> None:
    rows = tensor("input", ROWS, binary=False)
    result = infer(app, [rows], [triton.InferRequestedOutput("prediction", binary_data=False)])
    output = result.get_response()["outputs"][0]
    assert output["data"] == [r["prediction"] for r in predicted(app, ROWS, ["a", "b"])]
    assert "parameters" not in output


def test_openapi_describes_the_infer_routes_and_their_errors(app: App) -> None:
    from openapi_spec_validator import validate

    document = call(app, "GET", "/openapi.json").json()
    validate(document)
    schemas = document["components"]["schemas"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        post = document["paths"][path]["post"]
        # JSON requests (binary tensor data is in docs/http-api.md); JSON or binary answers
        assert set(post["requestBody"]["content"]) == {"application/json"}
        assert set(post["responses"]["200"]["content"]) == {
            "application/json",
            "application/octet-stream",
        }
        error = post["responses"]["400"]["content"]["application/json"]["schema"]
        assert error["anyOf"][0] == {"$ref": "#/components/schemas/OipError"}
        assert schemas["OipError"]["properties"]["error"] == {"type": "string"}
        assert "422" not in post["responses"]


def test_pathological_tensors_are_400_not_500(app: App) -> None:
    deep: list[Any] = ["x"]
    for _ in range(900):  # orjson parses it; Python's recursion limit would not
        deep = [deep]
    cases = [
        ({"name": "input", "shape": [1, 2], "datatype": "BYTES", "data": deep}, "needs 2 values"),
        ({"name": "input", "shape": [1] * 33, "datatype": "FP64", "data": [1]}, "at most 32"),
        ({"name": "input", "shape": [2**62, 2], "datatype": "FP64", "data": [1, 2]}, "needs"),
    ]
    for item, message in cases:
        answer = call(app, "POST", "/v2/models/reg/infer", json={"inputs": [item]})
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_an_answer_that_is_not_json_is_a_model_error() -> None:
    from shipml.errors import ModelError

    with pytest.raises(ModelError, match="cannot be written as JSON"):
        result_tensors([object(), object()])


def test_api_keys_guard_model_data_but_not_the_probes() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    ref = shipml.save_model(LinearRegression().fit(x, x[:, 0]), training_data=x, name="keyed")
    app = make_app(ref, api_keys=("s3cret",))
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/keyed/versions/1/ready"):
        assert call(app, "GET", path).status_code == 200, path
    for method, path in (("GET", "/v2/models/keyed"), ("GET", "/v2/models/keyed/config")):
        refused = call(app, method, path)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    assert call(app, "POST", "/v2/models/keyed/infer", json=body).status_code == 401
    keyed = call(app, "POST", "/v2/models/keyed/infer", json=body, headers={"X-API-Key": "s3cret"})
    assert keyed.status_code == 200 and keyed.json()["outputs"][0]["name"] == "prediction"


def infer_schema(app: App) -> Any:
    """A validator of infer requests, from the service's own OpenAPI document."""
    import jsonschema

    document = call(app, "GET", "/openapi.json").json()
    body = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]
    root = {**body["content"]["application/json"]["schema"], "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_the_documented_infer_request_accepts_what_the_service_does(app: App) -> None:
    """Differential: tritonclient's requests in both tensor forms, and requests the service
    refuses, against the document's InferRequest and against the service itself."""
    schema = infer_schema(app)
    per_feature = [tensor(name, ROWS[:1, [i]].reshape(1), binary=False) for i, name in
                   enumerate(["a", "b"])]  # fmt: skip
    for inputs in ([tensor("input", ROWS[:1], binary=False)], per_feature):
        body, _ = triton.InferenceServerClient.generate_request_body(inputs)
        request = orjson.loads(body)
        assert schema.is_valid(request), list(schema.iter_errors(request))[:1]
        assert call(app, "POST", "/v2/models/reg/infer", content=body).status_code == 200
    refused = [
        {"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]},  # a feature's name
        {"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
        {"name": "input", "shape": [1, 2], "datatype": "BYTES", "data": ["1", "2"]},
    ]
    for item in refused:
        request = {"inputs": [item]}
        assert not schema.is_valid(request), item
        assert call(app, "POST", "/v2/models/reg/infer", json=request).status_code == 400, item


def test_a_wide_table_is_described_in_a_document_linear_in_its_columns() -> None:
    """784 pixel columns once made an 8.7 MB document (every feature's tensor spelled out
    per datatype, twice); it must grow with the columns, not with their product."""
    sizes = {}
    for width in (50, 400):
        names = [f"pixel{i}" for i in range(width)]
        x = np.random.default_rng(0).integers(0, 256, (40, width))
        model = LinearRegression().fit(x, x[:, 0])
        ref = shipml.save_model(model, training_data=x, feature_names=names, name=f"w{width}")
        app = make_app(ref)
        sizes[width] = len(call(app, "GET", "/openapi.json").content)
        request = {
            "inputs": [
                {"name": n, "shape": [1], "datatype": "INT64", "data": [int(v)]}
                for n, v in zip(names, x[0], strict=True)
            ]
        }
        assert infer_schema(app).is_valid(request)
        answer = call(app, "POST", f"/v2/models/w{width}/infer", json=request)
        assert answer.status_code == 200, answer.text
    assert sizes[400] < 10 * sizes[50] and sizes[400] < 400_000, sizes
