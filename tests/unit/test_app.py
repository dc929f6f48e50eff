"""The ASGI app in-process: routing, errors, auth and the OIP face, on a tiny real model."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from sklearn.linear_model import LinearRegression

import shipml
from shipml.errors import ProjectError
from shipml.serving.app import App, Message, create_app
from shipml.serving.costs import Cost
from shipml.serving.settings import ServeSettings, load_settings
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


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"1" + b"0" * 400, b"NaN", b"Infinity"])
def test_numbers_a_double_cannot_hold_are_refused_before_the_model(app: App, number: bytes) -> None:
    # The scikit-learn scorer skips scikit-learn's finiteness scan: this is why it may.
    answer = call(app, "POST", "/predict", content=b'{"a": ' + number + b', "b": 1}')
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_json"
    assert call(app, "POST", "/predict", json={"a": 1e308, "b": 1}).status_code == 200


@pytest.mark.parametrize(
    "encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"]
)
def test_bodies_python_reads_are_read_alike(app: App, encoding: str) -> None:
    # what json.loads(bytes) (Flask's get_json) takes: a BOM, UTF-16/32
    text = '[{"a": 1.5, "b": 2}, {"a": -1, "b": 0.25}]'
    body = text.encode(encoding)
    assert json.loads(body) == json.loads(text)  # the reference reads it
    answer = call(app, "POST", "/predict", content=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == call(app, "POST", "/predict", content=text.encode()).json()


@pytest.mark.parametrize("body", [b"\xef\xbb\xbf", b"\xff\xfe{\x00", b'{"a"\x00: 1}', b"\x00\x00"])
def test_what_no_encoding_makes_json_is_400(app: App, body: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(body)  # nor does the reference
    answer = call(app, "POST", "/predict", content=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


def test_every_response_has_a_request_id(app: App) -> None:
    for method, path in (("GET", "/health/live"), ("GET", "/nope"), ("POST", "/predict")):
        assert len(call(app, method, path).headers["x-request-id"]) >= 16
    unsafe = call(app, "GET", "/health/live", headers={"X-Request-ID": "bad id\twith tab"})
    assert unsafe.headers["x-request-id"] != "bad id\twith tab"


def test_head_answers_every_get_route_as_get_does(app: App) -> None:
    # RFC 9110 §9.3.2; the server drops the body (tests/integration/test_serve.py)
    gets = [route.path for route in app.endpoints.routes() if route.method == "GET"]
    assert "/metrics" in gets  # its length moves with every request: checked for its type
    for path in (p.replace("{file}", "playground.css") for p in gets):
        get, head = call(app, "GET", path), call(app, "HEAD", path)
        assert head.status_code == get.status_code, path
        same = ("content-type",) if path == "/metrics" else ("content-type", "content-length")
        assert [head.headers.get(n) for n in same] == [get.headers.get(n) for n in same], path
    post_only = call(app, "HEAD", "/predict")
    assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
    get_only = call(app, "POST", "/info")
    assert get_only.status_code == 405 and get_only.headers["allow"] == "GET, HEAD"
    assert "use GET, HEAD" in get_only.json()["error"]["message"]


def test_body_limit_is_checked_before_reading(regressor: str) -> None:
    app = make_app(regressor, max_body_bytes=10)
    answer = call(app, "POST", "/predict", content=b"x" * 11)
    assert answer.status_code == 413
    assert "larger than 10 bytes" in answer.json()["error"]["message"]


def test_unknown_model_name_in_oip_is_404(app: App) -> None:
    assert call(app, "GET", "/v2/models/sum").json()["name"] == "sum"
    missing = call(app, "POST", "/v2/models/iris/infer", json={"inputs": []})
    assert missing.status_code == 404 and "'sum', not 'iris'" in missing.json()["error"]
    unrouted = call(app, "GET", "/v2/repository/index")
    assert unrouted.status_code == 404 and isinstance(unrouted.json()["error"], str)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": "x"}, "an infer request is"),
        ({"inputs": []}, "has no inputs"),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            "must have shape [N, 2]",
        ),
        (
            {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]},
            "missing input 'b'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]},
            "needs 4 values, its data holds 3",
        ),
    ],
)
def test_oip_errors(app: App, body: object, message: str) -> None:
    answer = call(app, "POST", "/v2/models/sum/infer", json=body)
    assert answer.status_code == 400 and message in answer.json()["error"]


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


def test_the_ready_hook_runs_on_the_loop_as_the_service_turns_ready(regressor: str) -> None:
    """A worker joins the ready board in on_ready: it must run on the event loop, in the
    very step that makes ``ready`` True, so no request handled on that loop can see the
    worker ready before the other workers do (a loading worker would still take
    connections and answer 503)."""
    app = create_app(
        ServeSettings(model=regressor), lambda: Store().fetch(parse_reference(regressor))
    )
    service = app.service
    seen: list[tuple[bool, bool]] = []
    polled: list[bool] = []

    async def go() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        service.on_ready = lambda: seen.append(
            (service.ready, threading.get_ident() == loop_thread)
        )
        service.start()

        async def poll() -> None:  # what a request on this loop would see, step by step
            while not service.ready:
                polled.append(False)
                await asyncio.sleep(0)
            polled.append(bool(seen))  # the first step that sees `ready` sees the hook done

        await asyncio.wait_for(asyncio.gather(poll(), service.wait_ready()), 60)
        assert loop is asyncio.get_running_loop()

    asyncio.run(go())
    assert seen == [(True, True)]
    assert polled[-1] is True


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


# -- batching through the app ----------------------------------------------------------


class Recording:
    """Wraps the real scorer: records each model call; a = 13 makes the model raise."""

    def __init__(self, scorer: Any, block: threading.Event | None = None) -> None:
        self.scorer, self.block = scorer, block
        self.contract, self.batchable = scorer.contract, scorer.batchable
        self.output_schema = scorer.output_schema
        self.calls: list[list[float]] = []
        self.started = threading.Event()

    def prepare(self, payload: Any, body: bytes) -> Any:
        return self.scorer.prepare(payload, body)

    def concat(self, parts: list[Any]) -> Any:
        return self.scorer.concat(parts)

    def predict(self, data: Any) -> Any:
        self.calls.append([float(a) for a in data[:, 0]])
        self.started.set()
        if self.block is not None:
            self.block.wait(10)
        if 13.0 in data[:, 0]:
            raise ValueError("unlucky")
        return self.scorer.predict(data)


def recording(app: App, block: threading.Event | None = None) -> Recording:
    loaded = app.service.current()
    fake = Recording(loaded.scorer, block)
    app.service.loaded = replace(loaded, scorer=fake)
    return fake


def call_many(app: App, bodies: list[Any]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))

    return asyncio.run(go())


def sample(app: App, name: str) -> float:
    app.metrics.flush()
    return app.metrics.registry.get_sample_value(name) or 0.0


def test_concurrent_requests_share_model_calls(app: App) -> None:
    model = recording(app)
    values = [i / 2 for i in range(20)]
    answers = call_many(app, [{"a": a, "b": 1.0} for a in values])
    assert [a.json()["prediction"] for a in answers] == [pytest.approx(a + 1.0) for a in values]
    assert sorted(a for call in model.calls for a in call) == values
    assert len(model.calls) < 20
    assert sample(app, "shipml_batch_size_sum") == 20
    assert sample(app, "shipml_batch_size_count") == len(model.calls)


def test_with_batching_off_each_request_is_its_own_call(regressor: str) -> None:
    app = make_app(regressor, batching=False)
    model = recording(app)
    answers = call_many(app, [{"a": float(i), "b": 0.0} for i in range(5)])
    assert [a.json()["prediction"] for a in answers] == [pytest.approx(i) for i in range(5)]
    assert model.calls == [[float(i)] for i in range(5)]


def test_a_request_that_breaks_the_model_fails_alone(app: App) -> None:
    recording(app)
    answers = call_many(app, [{"a": a, "b": 0.0} for a in (1.0, 13.0, 3.0)])
    assert [a.status_code for a in answers] == [200, 500, 200]
    failed = answers[1].json()["error"]
    assert failed["code"] == "model_error" and "ValueError" in failed["message"]
    assert failed["request_id"] == answers[1].headers["x-request-id"]
    assert answers[2].json()["prediction"] == pytest.approx(3.0)


def test_a_full_queue_answers_503_with_retry_after(regressor: str) -> None:
    app = make_app(regressor, max_queue=2)
    answers = call_many(app, [{"a": 1.0, "b": 1.0}] * 6)
    refused = [a for a in answers if a.status_code == 503]
    assert refused and all(a.json()["error"]["code"] == "overloaded" for a in refused)
    assert all(a.headers["retry-after"] == "1" for a in refused)
    assert "rows are waiting" in refused[0].json()["error"]["message"]
    served = [a for a in answers if a.status_code == 200]
    assert served and all(a.json()["prediction"] == pytest.approx(2.0) for a in served)
    overloaded = {"route": "/predict", "method": "POST", "status": "503"}
    app.metrics.flush()
    count = app.metrics.registry.get_sample_value("shipml_requests_total", overloaded)
    assert count == len(refused)


def test_a_slow_model_skips_requests_whose_client_left(app: App) -> None:
    release = threading.Event()
    model = recording(app, block=release)
    # as for a model slower than INLINE_BELOW_SECONDS: not on the event loop
    app.service.loaded = replace(app.service.current(), cost=Cost(0.01))
    assert not app.service.inline

    def body(a: float) -> bytes:
        return orjson.dumps({"a": a, "b": 0.0})

    async def go() -> tuple[list[Message], list[Message], list[Message]]:
        first, gone, last = asyncio.Event(), asyncio.Event(), asyncio.Event()
        sent: tuple[list[Message], list[Message], list[Message]] = ([], [], [])

        def request(a: float, disconnect: asyncio.Event, out: list[Message]) -> Any:
            messages = [{"type": "http.request", "body": body(a), "more_body": False}]

            async def receive() -> Message:
                if messages:
                    return messages.pop()
                await disconnect.wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                out.append(message)

            scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
            return app(scope, receive, send)

        running = asyncio.ensure_future(request(1.0, first, sent[0]))
        await asyncio.get_running_loop().run_in_executor(None, model.started.wait, 10)
        queued = [
            asyncio.ensure_future(request(2.0, gone, sent[1])),
            asyncio.ensure_future(request(3.0, last, sent[2])),
        ]
        await asyncio.sleep(0.05)  # both are queued behind the busy model
        gone.set()  # the second client hangs up
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(running, *queued)
        return sent

    sent = asyncio.run(go())
    assert model.calls == [[1.0], [3.0]]  # the abandoned request never reached the model
    assert sent[1] == []
    assert sent[0][0]["status"] == 200 and sent[2][0]["status"] == 200
    assert orjson.loads(sent[2][1]["body"])["prediction"] == pytest.approx(3.0)


def test_batching_settings_come_from_the_environment_and_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHIPML_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("SHIPML_MAX_LATENCY_MS", "0.5")
    monkeypatch.setenv("SHIPML_BATCHING", "false")
    settings = load_settings({"max_queue": 100})
    assert (settings.max_batch_size, settings.max_latency_ms) == (16, 0.5)
    assert (settings.batching, settings.max_queue) == (False, 100)
    monkeypatch.setenv("SHIPML_MAX_BATCH_SIZE", "0")
    with pytest.raises(
        ProjectError, match=r"max_batch_size \(SHIPML_MAX_BATCH_SIZE\) must be at least 1"
    ):
        load_settings()
    monkeypatch.delenv("SHIPML_MAX_BATCH_SIZE")
    monkeypatch.setenv("SHIPML_MAX_LATENCY_MS", "soon")
    with pytest.raises(ProjectError, match="SHIPML_MAX_LATENCY_MS must be a number, got 'soon'"):
        load_settings()


# -- malformed input and readiness (issue 14) ------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def test_deeply_nested_bodies_are_4xx_with_one_log_line(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    for body in (b'{"inputs": ' + nested(1000) + b"}", nested(1000), nested(1030)):
        answer = call(app, "POST", "/predict", content=body)
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["error"]["code"] in ("invalid_json", "invalid_input")
    deep_record = b'{"a": ' + nested(900) + b', "b": 1}'
    answer = call(app, "POST", "/predict", content=deep_record)
    assert answer.status_code == 422 and "'a' must be a number" in answer.text
    assert len(answer.content) < 500
    assert sum(len(r.getMessage()) for r in caplog.records) < 2000
    assert all("Traceback" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "tensor",
    [
        b'{"name": "input", "shape": [1.0, 2], "datatype": "FP64", "data": [1, 2]}',
        b'{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": ' + nested(990) + b"}",
        b'{"name": "input", "shape": [true, 2], "datatype": "FP64", "data": [1, 2]}',
    ],
)
def test_malformed_tensors_are_400(app: App, tensor: bytes) -> None:
    answer = call(app, "POST", "/v2/models/sum/infer", content=b'{"inputs": [' + tensor + b"]}")
    assert answer.status_code == 400 and isinstance(answer.json()["error"], str)


def test_ready_says_which_attempt_failed_and_why(regressor: str) -> None:
    from shipml.errors import StoreError

    attempts: list[int] = []

    def flaky() -> Any:
        attempts.append(1)
        raise StoreError("the store at az://models is unreachable: connection timed out")

    app = create_app(ServeSettings(model=regressor), flaky)

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            app.service.start()
            loading = await client.get("/health/ready")
            while not attempts or app.service.retry_at is None:
                await asyncio.sleep(0.01)
            failing = await client.get("/health/ready")
            await app.service.stop()
            return loading, failing

    loading, failing = asyncio.run(go())
    assert loading.status_code == 503
    assert loading.json()["error"]["state"] == "loading"
    assert "the model is loading (attempt 1" in loading.json()["error"]["message"]
    error = failing.json()["error"]
    assert failing.status_code == 503 and failing.headers["connection"] == "close"
    assert error["code"] == "not_ready" and error["state"] == "retrying"
    assert error["attempt"] == 1 and "unreachable" in error["reason"]
    assert "attempt 1 failed: the store at az://models is unreachable" in error["message"]
    assert "attempt 2 starts in 1 s" in error["message"]


def test_the_openapi_document_lists_every_route_and_status(app: App) -> None:
    from openapi_spec_validator import validate

    document = call(app, "GET", "/openapi.json").json()
    validate(document)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (route.method, route.path)
        for route in app.endpoints.routes()
        if route.path not in ("/score", "/swagger.json")  # a score.py model's own
    }
    assert documented == served
    for (method, path), operation in (
        ((m, p), document["paths"][p][m.lower()]) for m, p in documented
    ):
        codes = set(operation["responses"])
        assert {"200", "400", "408", "431", "500", "503"} <= codes, (method, path)
        for response in operation["responses"].values():
            assert response["headers"]["X-Request-ID"]["required"] is True
    assert document["components"]["schemas"]["Result"]["required"] == ["prediction"]
    record = document["components"]["schemas"]["Record"]
    assert record["additionalProperties"] is False and record["required"] == ["a", "b"]
    assert {"413", "422"} <= set(document["paths"]["/predict"]["post"]["responses"])


# -- CORS ------------------------------------------------------------------------------


def test_cors_is_off_by_default(app: App) -> None:
    preflight = call(
        app,
        "OPTIONS",
        "/predict",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405
    answer = call(app, "GET", "/health/live", headers={"Origin": "https://app.example"})
    assert not [name for name in answer.headers if name.startswith("access-control")]
    assert "vary" not in answer.headers


def test_cors_allows_the_configured_origins_only(regressor: str) -> None:
    app = make_app(regressor, cors_origins=("https://app.example",), api_keys=("k",))
    asking = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    }
    preflight = call(app, "OPTIONS", "/predict", headers=asking)  # no key: browsers send none
    assert preflight.status_code == 204 and preflight.content == b""
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert preflight.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in preflight.headers
    for path in ("/info", "/v2/models/sum/infer", "/static/app.js", "/nowhere"):
        assert call(app, "OPTIONS", path, headers=asking).status_code == 204, path
    other = call(app, "OPTIONS", "/predict", headers={**asking, "Origin": "https://evil.example"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in other.headers
    answer = call(
        app,
        "POST",
        "/predict",
        json={"a": 1, "b": 2},
        headers={"Origin": "https://app.example", "X-API-Key": "k"},
    )
    assert answer.status_code == 200 and answer.headers["vary"] == "Origin"
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in answer.headers["access-control-expose-headers"]
    foreign = call(app, "GET", "/health/live", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers and foreign.headers["vary"]
    plain = call(app, "OPTIONS", "/predict", headers={"Origin": "https://app.example"})
    assert plain.status_code == 405 and plain.headers["allow"] == "POST, OPTIONS"
    document = call(app, "GET", "/openapi.json", headers={"X-API-Key": "k"}).json()
    assert "options" in document["paths"]["/predict"]


def test_cors_origins_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPML_CORS_ORIGINS", "https://a.example, http://localhost:3000/")
    assert load_settings().cors_origins == ("https://a.example", "http://localhost:3000")
    monkeypatch.delenv("SHIPML_CORS_ORIGINS")
    assert load_settings({"cors_origins": ["*"]}).cors_origins == ("*",)
    monkeypatch.setenv("SHIPML_CORS_ORIGINS", "a.example/path")
    with pytest.raises(ProjectError, match=r"'a.example/path' is not an origin"):
        load_settings()


@pytest.mark.parametrize(
    ("body", "whose"),
    [
        ({"instances": [{"a": 1, "b": 2}]}, "TensorFlow Serving's, KServe v1's"),
        ({"instances": [[1, 2]]}, "TensorFlow Serving's"),
        ({"dataframe_records": [{"a": 1, "b": 2}]}, "MLflow's"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}, "MLflow's"),
        ({"input_data": {"columns": ["a", "b"], "data": [[1, 2]]}}, "Azure ML's"),
    ],
)
def test_other_servers_request_formats_get_a_422_saying_what_to_send(
    app: App, body: Any, whose: str
) -> None:
    # a client written for another model server: not "missing field 'a'"
    answer = call(app, "POST", "/predict", json=body)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert whose in message and 'send {"inputs": [...]}' in message, message
    key = next(iter(body))
    inputs = body[key] if isinstance(body[key], list) else body[key]["data"]
    assert call(app, "POST", "/predict", json={"inputs": inputs}).status_code == 200  # as told


def test_a_record_whose_field_is_named_like_an_envelope_is_a_record() -> None:
    x = np.array([[0.0], [1.0], [2.0]])
    ref = shipml.save_model(
        LinearRegression().fit(x, x[:, 0]), training_data=x, feature_names=["instances"], name="i"
    )
    answer = call(make_app(ref), "POST", "/predict", json={"instances": 2.0})
    assert answer.status_code == 200
    assert answer.json()["prediction"] == pytest.approx(2.0)
