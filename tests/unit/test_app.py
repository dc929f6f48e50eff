"""The ASGI app in-process: routing, errors, auth and the OIP face, on a tiny real model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import shipml
from shipml.serving.app import App, create_app
from shipml.serving.settings import ServeSettings
from shipml.store import Store, parse_reference


@pytest.fixture
def regressor() -> str:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    model = LinearRegression().fit(x, x.sum(axis=1))
    return shipml.save_model(model, training_data=x, feature_names=["a", "b"], name="sum")


def make_app(ref: str, **settings: object) -> App:
    app = create_app(
        ServeSettings(model=ref, **settings),  # type: ignore[arg-type]
        lambda: Store().fetch(parse_reference(ref)),
    )
    app.service.load_now()
    return app


def call(app: App, method: str, path: str, **kw: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kw)  # type: ignore[arg-type]

    return asyncio.run(go())


@pytest.fixture
def app(regressor: str) -> Iterator[App]:
    yield make_app(regressor)


def test_regressor_answers_prediction(app: App) -> None:
    answer = call(app, "POST", "/predict", json={"a": 1.0, "b": 2})
    assert answer.status_code == 200
    assert answer.json()["prediction"] == pytest.approx(3.0)
    assert (
        call(app, "POST", "/predict", json=[{"a": 1, "b": 1}] * 2).json()
        == [{"prediction": pytest.approx(2.0)}] * 2
    )


def test_every_response_has_a_request_id(app: App) -> None:
    for method, path in (("GET", "/health/live"), ("GET", "/nope"), ("POST", "/predict")):
        assert len(call(app, method, path).headers["x-request-id"]) >= 16
    unsafe = call(app, "GET", "/health/live", headers={"X-Request-ID": "bad id\twith tab"})
    assert unsafe.headers["x-request-id"] != "bad id\twith tab"


def test_body_limit_is_checked_before_reading(regressor: str) -> None:
    app = make_app(regressor, max_body_bytes=10)
    answer = call(app, "POST", "/predict", content=b"x" * 11)
    assert answer.status_code == 413
    assert "larger than 10 bytes" in answer.json()["error"]["message"]


def test_unknown_model_name_in_oip_is_404(app: App) -> None:
    assert call(app, "GET", "/v2/models/sum").json()["name"] == "sum"
    missing = call(app, "POST", "/v2/models/iris/infer", json={"inputs": []})
    assert missing.status_code == 404 and "'sum', not 'iris'" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": "x"}, "an infer request is"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "data": [1, 2, 3]}]}, "shape must be [N, 2]"),
        ({"inputs": [{"name": "a", "shape": [1], "data": [1]}]}, "missing input tensor 'b'"),
        ({"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}, "has 3 values"),
    ],
)
def test_oip_errors(app: App, body: object, message: str) -> None:
    answer = call(app, "POST", "/v2/models/sum/infer", json=body)
    assert answer.status_code == 422 and message in answer.json()["error"]["message"]


def test_auth_protects_data_but_not_probes_or_pages(regressor: str) -> None:
    app = make_app(regressor, api_keys=("s3cret",))
    assert call(app, "GET", "/info").status_code == 401
    assert call(app, "GET", "/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert call(app, "GET", "/info", headers={"Authorization": "Basic s3cret"}).status_code == 401
    for path in ("/health/live", "/health/ready", "/v2/health/ready", "/openapi.json"):
        assert call(app, "GET", path).status_code == 200, path
    document = call(app, "GET", "/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_not_ready_before_load(regressor: str) -> None:
    app = create_app(
        ServeSettings(model=regressor), lambda: Store().fetch(parse_reference(regressor))
    )
    answer = call(app, "GET", "/health/ready")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert call(app, "GET", "/health/live").status_code == 200


def test_openapi_document_is_valid(app: App) -> None:
    from openapi_spec_validator import validate

    document = call(app, "GET", "/openapi.json").json()
    validate(document)
    record = document["components"]["schemas"]["Record"]
    assert record["required"] == ["a", "b"]
    assert document["paths"]["/predict"]["post"]["responses"]["422"]
    assert (
        "example"
        in document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    )
