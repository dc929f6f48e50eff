"""The Open Inference Protocol with the clients people use, against real ``shipml serve``
processes: Triton's ``tritonclient[http]`` with its defaults (binary tensors both ways) and
KServe's ``InferenceRESTClient`` (in its own venv). Every answer is compared with what
``/predict`` answers for the same rows and with the model called in-process.

One server per model for the whole module: a classifier with string labels, a regressor,
a classifier with mixed (text, integer, number, boolean) features and integer labels, an
Azure ML ``score.py`` model and a predictor class.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from tests.conftest import IRIS_FEATURES, REPO, SHIPML, Server, free_port, stop_all

pytestmark = pytest.mark.slow
KSERVE_PYTHON = REPO / ".tools" / "kserve-venv" / "bin" / "python"
MIXED = {"city": "string", "rooms": "integer", "area": "number", "new": "boolean"}
RTOL = 1e-12  # same rows, same model: only batching could move a last bit


@dataclass
class Served:
    server: Server
    model: Any  # the estimator, for in-process answers
    x: np.ndarray  # rows to ask about


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Five models in one store, five servers started at once, stopped after the module."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import shipml

    root = tmp_path_factory.mktemp("oip")
    env = {**os.environ, "SHIPML_STORE": str(root / "store"), "SHIPML_CACHE": str(root / "cache")}
    for name in ("SHIPML_API_KEYS", "SHIPML_API_KEYS_FILE", "SHIPML_PORT"):
        env.pop(name, None)
    projects = []
    for fixture in ("azureml", "echo"):  # score.py and predictor-class models, trained as users do
        shutil.copytree(REPO / "tests" / "fixtures" / fixture, root / fixture)
        projects.append(
            subprocess.Popen(
                [SHIPML, "train"],
                cwd=root / fixture,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    rng = np.random.default_rng(7)
    iris = load_iris()
    labels = iris.target_names[iris.target]
    classifier = LogisticRegression(max_iter=500).fit(iris.data, labels)
    diabetes = load_diabetes()
    regressor = LinearRegression().fit(diabetes.data, diabetes.target)
    columns, mixed_x, mixed_y = mixed_data(rng)
    encode = ColumnTransformer(
        [("city", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0])],
        remainder="passthrough",
    )
    mixed = make_pipeline(encode, LogisticRegression(max_iter=2000)).fit(mixed_x, mixed_y)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPML_STORE", env["SHIPML_STORE"])
        patch.setenv("SHIPML_CACHE", env["SHIPML_CACHE"])
        shipml.save_model(
            classifier, training_data=iris.data, feature_names=IRIS_FEATURES, name="iris"
        )
        shipml.save_model(regressor, training_data=diabetes.data, name="reg")
        shipml.save_model(mixed, training_data=columns, name="homes")
    # The in-process models' servers start while the two projects still train.
    servers = {name: start(name, env, root) for name in ("iris", "reg", "homes")}
    try:
        for project in projects:
            output = project.communicate(timeout=300)[0]
            assert project.returncode == 0, output
        servers.update({name: start(name, env, root) for name in ("diabetes", "echo")})
        iris_rows = np.vstack([iris.data[::7], iris.data[:20] + rng.normal(0, 0.3, (20, 4))])
        plan = {
            "iris": (classifier, iris_rows),
            "reg": (regressor, diabetes.data[::9]),
            "homes": (mixed, mixed_data(np.random.default_rng(8), 30)[1]),
            "diabetes": (joblib.load(root / "azureml" / "model.pkl"), diabetes.data[::11]),
            "echo": (None, np.array(["hello", "", "é ✓", "a b c"], dtype=object)),
        }
        for server in servers.values():
            server.wait_ready(timeout=120)
        yield {name: Served(servers[name], *plan[name]) for name in plan}
    finally:
        stop_all(servers.values())


def mixed_data(
    rng: np.random.Generator, n: int = 160
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    city = rng.choice(["paris", "lyon", "nice"], n)
    rooms = rng.integers(1, 6, n)
    area = rng.uniform(20, 150, n).round(1)
    new = rng.random(n) < 0.3
    score = area / 40 + rooms + 2 * (city == "paris") + new
    table = np.empty((n, 4), dtype=object)
    for j, column in enumerate((city, rooms, area, new)):
        table[:, j] = column.tolist()  # Python values, as a parsed record holds them
    return (
        {"city": city, "rooms": rooms, "area": area, "new": new},
        table,
        np.digitize(score, [5, 7]),
    )


def start(model: str, env: dict[str, str], root: Path) -> Server:
    port = free_port()
    log = root / f"{model}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [SHIPML, "serve", f"{model}@latest", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            start_new_session=True,
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


def triton_client(served: Served) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(
        served.server.url.removeprefix("http://"), network_timeout=30
    )


def tensor(name: str, array: np.ndarray, binary: bool = True) -> triton.InferInput:
    datatype = "BYTES" if array.dtype == object else np_to_triton_dtype(array.dtype)
    return triton.InferInput(name, list(array.shape), datatype).set_data_from_numpy(
        array, binary_data=binary
    )


def predict(served: Served, body: Any) -> Any:
    with served.server.client() as client:
        answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def iris_records(rows: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(IRIS_FEATURES, row, strict=True)) for row in rows.astype(np.float64).tolist()]


def assert_classifier(
    result: triton.InferResult, expected: list[dict[str, Any]], served: Served, rows: Any
) -> None:
    """Labels and probabilities as /predict gives them and as the estimator computes them."""
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
    assert labels == [r["label"] for r in expected]
    classes = [c.decode() for c in result.as_numpy("classes").tolist()]
    assert classes == list(expected[0]["probabilities"]) == [str(c) for c in served.model.classes_]
    probabilities = result.as_numpy("probabilities")
    np.testing.assert_allclose(
        probabilities, [list(r["probabilities"].values()) for r in expected], rtol=RTOL
    )
    np.testing.assert_allclose(probabilities, served.model.predict_proba(rows), rtol=RTOL)
    assert labels == served.model.predict(rows).tolist()


# -- tritonclient ----------------------------------------------------------------------


def test_tritonclient_health_metadata_and_config(served: dict[str, Served]) -> None:
    client = triton_client(served["iris"])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "2") and not client.is_model_ready("other")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("iris", "1")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP64", [-1, 3]),
        ("classes", "BYTES", [3]),
    ]
    config = client.get_model_config("iris")
    assert config["max_batch_size"] == 0 and config["input"][0]["dims"] == [-1, 4]
    assert config["output"][0]["data_type"] == "TYPE_STRING"
    with pytest.raises(InferenceServerException) as missing:
        client.get_model_metadata("iris", "2")
    assert missing.value.status() == "404" and "serves version 1" in missing.value.message()
    homes = triton_client(served["homes"]).get_model_metadata("homes")
    assert [(i["name"], i["datatype"]) for i in homes["inputs"]] == [
        ("city", "BYTES"),
        ("rooms", "INT64"),
        ("area", "FP64"),
        ("new", "BOOL"),
    ]
    assert homes["outputs"][0] == {"name": "label", "datatype": "INT64", "shape": [-1]}
    client.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_defaults_classifier(
    served: dict[str, Served], dtype: Any, binary: bool
) -> None:
    iris = served["iris"]
    rows = iris.x.astype(dtype)
    client = triton_client(iris)
    result = client.infer("iris", [tensor("input", rows, binary)])  # all outputs, as binary data
    assert result.get_response()["model_version"] == "1"
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    exact = rows.astype(np.float64)  # FP32 rows are these float64 values exactly
    assert_classifier(result, predict(iris, iris_records(rows)), iris, exact)
    client.close()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_compressed_requests(
    served: dict[str, Served], algorithm: str, binary: bool
) -> None:
    # request_compression_algorithm: the client compresses the body and says so in
    # Content-Encoding, as Triton's server reads it (serving/encoding.py)
    iris = served["iris"]
    client = triton_client(iris)
    result = client.infer(
        "iris", [tensor("input", iris.x, binary)], request_compression_algorithm=algorithm
    )
    assert_classifier(result, predict(iris, iris_records(iris.x)), iris, iris.x)
    client.close()


def test_tritonclient_one_tensor_per_feature_and_integers(served: dict[str, Served]) -> None:
    iris = served["iris"]
    rows = np.round(iris.x)  # integral values: INT64 fits a number feature
    client = triton_client(iris)
    inputs = [
        tensor(name, rows[:, j].astype(np.int64).reshape(-1, 1))
        for j, name in enumerate(IRIS_FEATURES)
    ]
    result = client.infer("iris", inputs[::-1], model_version="1")
    assert_classifier(result, predict(iris, iris_records(rows)), iris, rows)
    client.close()


def test_tritonclient_requested_outputs_ids_parameters_classification(
    served: dict[str, Served],
) -> None:
    iris = served["iris"]
    client = triton_client(iris)
    outputs = [
        triton.InferRequestedOutput("probabilities", class_count=2),
        triton.InferRequestedOutput("label", binary_data=False),
    ]
    result = client.infer(
        "iris",
        [tensor("input", iris.x[:5])],
        outputs=outputs,
        request_id="mine-7",
        parameters={"note": "x"},
    )
    response = result.get_response()
    assert response["id"] == "mine-7"
    assert [o["name"] for o in response["outputs"]] == ["probabilities", "label"]  # only those
    expected = predict(iris, iris_records(iris.x[:5]))
    assert response["outputs"][1]["data"] == [r["label"] for r in expected]
    top = result.as_numpy("probabilities")
    assert top.shape == (5, 2)
    for row, answer in zip(top.tolist(), expected, strict=True):
        ranked = sorted(answer["probabilities"].items(), key=lambda kv: -kv[1])[:2]
        classes = list(answer["probabilities"])
        assert [t.decode() for t in row] == [f"{p:f}:{classes.index(c)}:{c}" for c, p in ranked]
    client.close()


def test_tritonclient_regressor(served: dict[str, Served]) -> None:
    reg = served["reg"]
    client = triton_client(reg)
    result = client.infer("reg", [tensor("input", reg.x)])
    expected = predict(reg, {"inputs": reg.x.tolist()})
    got = result.as_numpy("prediction")
    np.testing.assert_allclose(got, [r["prediction"] for r in expected], rtol=RTOL)
    np.testing.assert_allclose(got, reg.model.predict(reg.x), rtol=RTOL)
    assert client.get_model_metadata("reg")["outputs"] == [
        {"name": "prediction", "datatype": "FP64", "shape": [-1]}
    ]
    client.close()


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_mixed_features(served: dict[str, Served], binary: bool) -> None:
    homes = served["homes"]
    x = homes.x
    columns = [
        np.array(x[:, 0].tolist(), dtype=object),
        np.array(x[:, 1].tolist(), dtype=np.int64),
        np.array(x[:, 2].tolist(), dtype=np.float64),
        np.array(x[:, 3].tolist(), dtype=bool),
    ]
    client = triton_client(homes)
    result = client.infer(
        "homes", [tensor(n, c, binary) for n, c in zip(MIXED, columns, strict=True)]
    )
    records = [dict(zip(MIXED, row, strict=True)) for row in x.tolist()]
    expected = predict(homes, records)
    assert result.as_numpy("label").tolist() == [r["label"] for r in expected]
    assert result.get_response()["outputs"][0]["datatype"] == "INT64"
    assert_classifier(result, expected, homes, x)
    with pytest.raises(InferenceServerException) as wrong:
        client.infer("homes", [tensor("input", np.zeros((1, 4)))])
    assert wrong.value.status() == "400" and "one tensor per feature" in wrong.value.message()
    client.close()


def test_score_py_and_predictor_class_models(served: dict[str, Served]) -> None:
    diabetes = served["diabetes"]
    client = triton_client(diabetes)
    assert client.get_model_metadata("diabetes")["inputs"] == []  # no schema: {"data": …}
    result = client.infer("diabetes", [tensor("data", diabetes.x)])
    expected = predict(diabetes, {"data": diabetes.x.tolist()})
    got = result.as_numpy("output")
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    np.testing.assert_allclose(got, diabetes.model.predict(diabetes.x), rtol=RTOL)
    client.close()
    echo = served["echo"]
    client = triton_client(echo)
    result = client.infer("echo", [tensor("text", echo.x)])
    expected = predict(echo, [{"text": t} for t in echo.x.tolist()])
    assert result.as_numpy("length").tolist() == [r["length"] for r in expected] == [5, 0, 3, 5]
    assert [t.decode() for t in result.as_numpy("text").tolist()] == echo.x.tolist()
    with pytest.raises(InferenceServerException) as failed:
        client.infer("echo", [tensor("text", np.array(["boom"], dtype=object))])
    assert failed.value.status() == "500" and "RuntimeError" in failed.value.message()
    with pytest.raises(InferenceServerException) as wrong:
        client.infer("echo", [tensor("text", np.array([1.0]))])
    assert (
        wrong.value.status() == "400"
        and "must be strings (BYTES), got FP64" in wrong.value.message()
    )
    client.close()


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (lambda c, x: c.infer("other", [tensor("input", x)]), "404", "not 'other'"),
        (
            lambda c, x: c.infer("iris", [tensor("input", x)], model_version="2"),
            "404",
            "no version '2'",
        ),
        (
            lambda c, x: c.infer("iris", [tensor("input", x[:, :3])]),
            "400",
            "must have shape [N, 4]",
        ),
        (
            lambda c, x: c.infer("iris", [tensor("input", x.astype(str).astype(object))]),
            "400",
            "got BYTES",
        ),
        (
            lambda c, x: c.infer("iris", [tensor("input", np.full((1, 4), np.nan))]),
            "400",
            "NaN or infinity",
        ),
        (
            lambda c, x: c.infer(
                "iris", [tensor("input", x)], outputs=[triton.InferRequestedOutput("proba")]
            ),
            "400",
            "unknown output 'proba'; this model's outputs are label, probabilities, classes",
        ),
        (
            lambda c, x: c.infer(
                "iris",
                [tensor("input", x)],
                outputs=[triton.InferRequestedOutput("label", class_count=2)],
            ),
            "400",
            "no class scores",
        ),
        (
            lambda c, x: c.infer("iris", [tensor("sepal_length", x[:, 0].copy())]),
            "400",
            "missing input 'sepal_width'",
        ),
    ],
)
def test_tritonclient_errors_print_the_message(
    served: dict[str, Served], call: Any, status: str, words: str
) -> None:
    iris = served["iris"]
    client = triton_client(iris)
    with pytest.raises(InferenceServerException) as error:
        call(client, iris.x[:2])
    assert error.value.status() == status and words in error.value.message()
    assert words in str(error.value)
    client.close()


# -- malformed binary bodies: every one a 4xx with the protocol's error, never a 500 or a hang


def binary_body(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, int]:
    text = json.dumps(header).encode()
    return b"".join([text, *chunks]), len(text)


FOUR_FP64 = np.arange(4, dtype="<f8").tobytes()
GOOD = {
    "inputs": [
        {
            "name": "input",
            "shape": [1, 4],
            "datatype": "FP64",
            "parameters": {"binary_data_size": 32},
        }
    ]
}


def _with(
    size: Any = 32, datatype: str = "FP64", shape: Any = (1, 4), **extra: Any
) -> dict[str, Any]:
    item = {
        "name": "input",
        "shape": list(shape),
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }
    return {"inputs": [{**item, **extra}]}


MALFORMED: list[tuple[str, bytes, str | None, str]] = [
    (
        "truncated tensor data",
        binary_body(GOOD, FOUR_FP64[:20])[0],
        str(binary_body(GOOD)[1]),
        "goes past the end",
    ),
    ("header length beyond the body", binary_body(GOOD, FOUR_FP64)[0], "100000", "has only"),
    ("header length too short", binary_body(GOOD, FOUR_FP64)[0], "10", "not valid JSON"),
    (
        "header length too long",
        binary_body(GOOD, FOUR_FP64)[0],
        str(binary_body(GOOD)[1] + 3),
        "not valid JSON",
    ),
    ("header length not a number", binary_body(GOOD, FOUR_FP64)[0], "12abc", "number of bytes"),
    ("header length negative", binary_body(GOOD, FOUR_FP64)[0], "-5", "number of bytes"),
    (
        "trailing bytes",
        binary_body(GOOD, FOUR_FP64, b"xx")[0],
        str(binary_body(GOOD)[1]),
        "add up to 32",
    ),
    ("binary data without the header", binary_body(GOOD, FOUR_FP64)[0], None, "not valid JSON"),
    (
        "binary_data_size without binary",
        binary_body(GOOD)[0],
        None,
        "no Inference-Header-Content-Length",
    ),
    (
        "size that does not fit the shape",
        binary_body(_with(24), FOUR_FP64[:24])[0],
        str(len(json.dumps(_with(24)))),
        "needs 32 bytes",
    ),
    (
        "negative size",
        binary_body(_with(-8), FOUR_FP64)[0],
        str(len(json.dumps(_with(-8)))),
        "non-negative",
    ),
    (
        "size not a number",
        binary_body(_with("32"), FOUR_FP64)[0],
        str(len(json.dumps(_with("32")))),
        "non-negative",
    ),
    (
        "data and binary both",
        binary_body(_with(32, data=[1, 2, 3, 4]), FOUR_FP64)[0],
        str(len(json.dumps(_with(32, data=[1, 2, 3, 4])))),
        "both",
    ),
    (
        "bad shape",
        binary_body(_with(32, shape=(1, -4)), FOUR_FP64)[0],
        str(len(json.dumps(_with(32, shape=(1, -4))))),
        "non-negative integers",
    ),
    (
        "unknown datatype",
        binary_body(_with(32, "FLOAT"), FOUR_FP64)[0],
        str(len(json.dumps(_with(32, "FLOAT")))),
        "not supported",
    ),
    (
        "BOOL byte not 0 or 1",
        binary_body(_with(4, "BOOL"), b"\x00\x01\x02\x01")[0],
        str(len(json.dumps(_with(4, "BOOL")))),
        "byte 0 or 1",
    ),
    (
        "infinity in binary FP64",
        binary_body(GOOD, np.array([1, np.inf, 2, 3], "<f8").tobytes())[0],
        str(binary_body(GOOD)[1]),
        "NaN or infinity",
    ),
    ("empty body", b"", None, "not valid JSON"),
    ("JSON that is not a request", b"[1, 2]", None, "an infer request is"),
]
MALFORMED_BYTES: list[tuple[str, bytes, str]] = [
    ("BYTES length beyond the data", b"\x09\x00\x00\x00hello", "says 9 bytes but only 5 remain"),
    (
        "BYTES length cut short",
        b"\x05\x00\x00\x00hello" + b"\x01",
        "ends inside an element's length",
    ),
    ("BYTES not UTF-8", b"\x05\x00\x00\x00hell\xff", "not UTF-8"),
]


@pytest.mark.parametrize(
    ("case", "body", "header", "words"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_binary_bodies_are_400(
    served: dict[str, Served], case: str, body: bytes, header: str | None, words: str
) -> None:
    headers = {"X-Request-ID": "bad-body-1", "Content-Type": "application/octet-stream"}
    if header is not None:
        headers["Inference-Header-Content-Length"] = header
    with httpx.Client(base_url=served["iris"].server.url, timeout=10) as client:
        answer = client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert answer.status_code == 400, (case, answer.text)
    assert words in answer.json()["error"], case
    assert answer.headers["x-request-id"] == "bad-body-1"


@pytest.mark.parametrize(
    ("case", "data", "words"), MALFORMED_BYTES, ids=[m[0] for m in MALFORMED_BYTES]
)
def test_malformed_bytes_elements_are_400(
    served: dict[str, Served], case: str, data: bytes, words: str
) -> None:
    header = {
        "inputs": [
            {
                "name": "text",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(data)},
            }
        ]
    }
    body, size = binary_body(header, data)
    with httpx.Client(base_url=served["echo"].server.url, timeout=10) as client:
        answer = client.post(
            "/v2/models/echo/infer",
            content=body,
            headers={"Inference-Header-Content-Length": str(size)},
        )
        assert answer.status_code == 400 and words in answer.json()["error"], (case, answer.text)
        good, size = binary_body(
            {**header, "inputs": [{**header["inputs"][0], "parameters": {"binary_data_size": 9}}]},
            b"\x05\x00\x00\x00hello",
        )
        after = client.post(
            "/v2/models/echo/infer",
            content=good,
            headers={"Inference-Header-Content-Length": str(size)},
        )
        assert after.status_code == 200 and after.json()["outputs"][0]["data"] == [
            5
        ]  # still serving


# -- KServe's client -------------------------------------------------------------------


def kserve(calls: list[dict[str, Any]]) -> list[Any]:
    if not KSERVE_PYTHON.exists():
        raise AssertionError("the KServe client is not installed: run scripts/kserve-client.sh")
    script = REPO / "tests" / "integration" / "kserve_client.py"
    done = subprocess.run(
        [str(KSERVE_PYTHON), str(script)],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_kserve_client(served: dict[str, Served]) -> None:
    iris, homes = served["iris"], served["homes"]
    u, h = iris.server.url, homes.server.url
    rows = iris.x[:6]
    body = {
        "inputs": [
            {"name": "input", "shape": [6, 4], "datatype": "FP64", "data": rows.ravel().tolist()}
        ]
    }
    x = homes.x[:5]
    per_feature = [
        {"name": "city", "shape": [5], "datatype": "BYTES", "data": x[:, 0].tolist()},
        {
            "name": "rooms",
            "shape": [5],
            "datatype": "INT64",
            "data": x[:, 1].tolist(),
            "binary": False,
        },
        {"name": "area", "shape": [5, 1], "datatype": "FP64", "data": x[:, 2].tolist()},
        {
            "name": "new",
            "shape": [5],
            "datatype": "BOOL",
            "data": x[:, 3].tolist(),
            "binary": False,
        },
    ]
    results = kserve(
        [
            {"url": u, "call": "server_live"},
            {"url": u, "call": "server_ready"},
            {"url": u, "call": "model_ready", "model": "iris"},
            {"url": u, "call": "model_ready", "model": "other"},
            {"url": u, "call": "validate", "path": "/v2", "model_class": "ServerMetadataResponse"},
            {
                "url": u,
                "call": "validate",
                "path": "/v2/models/iris",
                "model_class": "ModelMetadataResponse",
            },
            {
                "url": u,
                "call": "validate",
                "path": "/v2/models/iris/ready",
                "model_class": "ModelReadyResponse",
            },
            {
                "url": u,
                "call": "validate",
                "path": "/v2/health/live",
                "model_class": "ServerLiveResponse",
            },
            {
                "url": u,
                "call": "validate",
                "path": "/v2/health/ready",
                "model_class": "ServerReadyResponse",
            },
            {
                "url": u,
                "call": "validate",
                "method": "POST",
                "path": "/v2/models/iris/infer",
                "json": body,
                "model_class": "InferenceResponse",
            },
            {
                "url": u,
                "call": "infer",
                "model": "iris",
                "id": "k-1",
                "inputs": [
                    {"name": "input", "shape": [6, 4], "datatype": "FP64", "data": rows.tolist()}
                ],
                "outputs": [
                    {"name": "probabilities", "binary": True},
                    {"name": "label", "binary": False},
                ],
            },
            {
                "url": u,
                "call": "infer",
                "model": "iris",
                "inputs": [
                    {
                        "name": "input",
                        "shape": [6, 4],
                        "datatype": "FP64",
                        "data": rows.ravel().tolist(),
                        "binary": False,
                    }
                ],
                "parameters": {"binary_data_output": True},
            },
            {"url": h, "call": "infer", "model": "homes", "inputs": per_feature},
            {
                "url": u,
                "call": "infer",
                "model": "other",
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [[1, 2, 3, 4]]}
                ],
            },
            {
                "url": u,
                "call": "infer",
                "model": "iris",
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [[1, 2, 3]]}
                ],
            },
        ]
    )
    assert results[:4] == [True, True, True, False]
    assert results[4:10] == [200] * 6  # every answer fits KServe's own data models
    expected = predict(iris, iris_records(rows))
    labels = [r["label"] for r in expected]
    probabilities = [list(r["probabilities"].values()) for r in expected]
    binary, json_mode = results[10], results[11]
    assert binary["id"] == "k-1" and list(binary["outputs"]) == ["probabilities", "label"]
    for answer in (binary, json_mode):
        assert answer["model_name"] == "iris"
        assert answer["outputs"]["label"]["data"] == labels
        np.testing.assert_allclose(
            answer["outputs"]["probabilities"]["data"], probabilities, rtol=RTOL
        )
    assert json_mode["outputs"]["classes"]["data"] == ["setosa", "versicolor", "virginica"]
    records = [dict(zip(MIXED, row, strict=True)) for row in x.tolist()]
    assert results[12]["outputs"]["label"]["data"] == [r["label"] for r in predict(homes, records)]
    assert results[13]["status"] == 404 and "not 'other'" in results[13]["message"]
    assert results[14]["status"] == 400 and "must have shape [N, 4]" in results[14]["message"]


def test_every_v2_response_has_a_request_id(served: dict[str, Served]) -> None:
    with served["iris"].server.client() as client:
        for method, path in [
            ("GET", "/v2"),
            ("GET", "/v2/health/ready"),
            ("GET", "/v2/models/iris/config"),
            ("GET", "/v2/models/nope"),
            ("POST", "/v2/models/iris/infer"),
        ]:
            answer = client.request(method, path)
            assert len(answer.headers["x-request-id"]) >= 16, path
        assert httpx.get(f"{served['iris'].server.url}/v2/models/iris/versions/1/ready").json() == {
            "name": "iris",
            "ready": True,
        }
