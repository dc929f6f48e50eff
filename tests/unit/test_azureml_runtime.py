"""score.py scripts in-process, run the way Microsoft's server runs them (the contract:
azureml-inference-server-http's user_script.py, input_parsers.py, routes.py and the
aml_request/aml_response modules). tests/integration/test_azureml_dropin.py compares
real scripts against Microsoft's server itself."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from shipml.errors import LoadFailed, ProjectError
from shipml.project import load_project
from shipml.serving.app import App, create_app
from shipml.serving.settings import ServeSettings
from shipml.store import Store, parse_reference
from shipml.train import train_project


@pytest.fixture(autouse=True)
def process_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Loading a script changes the working directory, sys.path and the environment."""
    monkeypatch.chdir(tmp_path)
    saved_path, saved_env = list(sys.path), dict(os.environ)
    yield
    sys.path[:] = saved_path
    os.environ.clear()
    os.environ.update(saved_env)


def regressor() -> LinearRegression:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    return LinearRegression().fit(x, x.sum(axis=1))


def register(
    tmp_path: Path,
    script: str,
    files: dict[str, Any] | None = None,
    code: dict[str, str] | None = None,
) -> str:
    """A project with score.py (and ``code`` files beside it) and model: files,
    registered as `shipml train` does."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "score.py").write_text(textwrap.dedent(script))
    for relpath, text in (code or {}).items():
        (project / relpath).write_text(text)
    tops = []
    for relpath, content in (files or {}).items():
        target = project / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            joblib.dump(content, target)
        tops.append(relpath.split("/")[0] + ("/" if "/" in relpath else ""))
    model = f"model: [{', '.join(sorted(set(tops)))}]\n" if tops else ""
    (project / "shipml.yaml").write_text(f"name: s\nscoring: score.py\n{model}")
    manifest, _ = train_project(load_project(project), Store())
    return manifest.ref


def make_app(ref: str) -> App:
    app = create_app(ServeSettings(model=ref), lambda: Store().fetch(parse_reference(ref)))
    app.service.load_now()
    return app


def call(app: App, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


PLAIN = """
    import json, os
    import joblib

    def init():
        global model
        model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/sub/m.pkl"))

    def run(raw_data):
        data = json.loads(raw_data)
        if data == "none":
            return None
        if data == "text":
            return "a string"
        if data == "nan":
            return {"b": float("nan"), "a": 1e-7, "é": 0.1 + 0.2}
        if data == "array":
            return model.predict([[1.0, 2.0]])
        return model.predict(data["data"]).tolist()
"""


def test_undecorated_run_gets_the_body_as_text_and_answers_like_json_dumps(
    tmp_path: Path,
) -> None:
    app = make_app(register(tmp_path, PLAIN, {"model/sub/m.pkl": regressor()}))
    ok = call(app, "POST", "/score", json={"data": [[1.0, 2.0]]})
    assert ok.status_code == 200 and ok.json() == pytest.approx([3.0])
    assert call(app, "POST", "/score", json="none").content == b"{}"
    assert call(app, "POST", "/score", json="text").content == b'"a string"'
    nan = call(app, "POST", "/score", json="nan")
    assert nan.content == json.dumps({"b": float("nan"), "a": 1e-7, "é": 0.1 + 0.2}).encode()
    # Microsoft's server answers a 500 for a numpy array; shipml writes it as a list.
    assert call(app, "POST", "/score", json="array").json() == pytest.approx([3.0])
    # /predict has the same semantics; errors keep shipml's format there
    assert call(app, "POST", "/predict", json="text").content == b'"a string"'
    broken = call(app, "POST", "/predict", json={"rows": 1})
    assert broken.status_code == 500 and broken.json()["error"]["code"] == "model_error"
    on_score = call(app, "POST", "/score", json={"rows": 1})
    assert on_score.status_code == 500 and set(on_score.json()) == {"message"}
    assert "x-request-id" in on_score.headers


def test_get_and_options_on_score(tmp_path: Path) -> None:
    script = """
        def init():
            pass

        def run(data):
            return data
    """
    app = make_app(register(tmp_path, script))
    # GET: the query parameters as the text of a JSON object, values read as JSON
    answer = call(app, "GET", "/score?a=1&b=[1,2]&c=x&c=y&d=null")
    assert json.loads(answer.json()) == {"a": 1, "b": [1, 2], "c": ["x", "y"], "d": None}
    options = call(app, "OPTIONS", "/score")
    assert options.status_code == 200 and options.content == b""
    assert call(app, "PUT", "/score").status_code == 405
    # not JSON at all: an undecorated run() takes any UTF-8 text
    assert call(app, "POST", "/score", content=b"plain words").json() == "plain words"
    assert call(app, "POST", "/score", content=b"\xff\xfe").status_code == 400


DECORATED = """
    import os
    import joblib
    import numpy as np
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
    from inference_schema.parameter_types.standard_py_parameter_type import (
        StandardPythonParameterType,
    )

    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "m.pkl"))

    @input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
    @input_schema("scale", StandardPythonParameterType(1.0))
    @output_schema(StandardPythonParameterType([3.0]))
    def run(data, scale=2.0, request_headers=None):
        if scale == 0:
            raise ZeroDivisionError("scale must not be 0")
        return {
            "prediction": (model.predict(data) / scale).tolist(),
            "agent": request_headers.get("X-Custom-Header"),
        }
"""


def test_decorated_run_takes_parameters_by_name(tmp_path: Path) -> None:
    app = make_app(register(tmp_path, DECORATED, {"m.pkl": regressor()}))
    headers = {"X-Custom-Header": "abc"}
    answer = call(app, "POST", "/score", json={"data": [[1.0, 2.0]]}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"prediction": pytest.approx([1.5]), "agent": "abc"}
    scaled = call(app, "POST", "/score", json={"data": [[1.0, 2.0]], "scale": 3.0})
    assert scaled.json()["prediction"] == pytest.approx([1.0])
    got = call(app, "GET", "/score?data=[[1.0,2.0]]&scale=1")
    assert got.status_code == 200 and got.json()["prediction"] == pytest.approx([3.0])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"scale": 1.0}, 422, "A value is not provided for the 'data' parameter."),
        ({"data": [[1.0, 2.0, 3.0]]}, 422, "array has size 3"),  # the decorator's own check
        ({"data": "text"}, 422, "expected an array"),
        ([1, 2], 422, "POST body should be a JSON dictionary."),
        (b"{not json", 400, "POST body could not be decoded as JSON"),
        (b"", 400, "POST body is empty. Expecting a JSON dictionary."),
    ],
)
def test_a_body_that_does_not_fit_the_decorators_is_the_clients_error(
    tmp_path: Path, body: Any, status: int, words: str
) -> None:
    app = make_app(register(tmp_path, DECORATED, {"m.pkl": regressor()}))
    kw: dict[str, Any] = (
        {"content": body, "headers": {"Content-Type": "application/json"}}
        if isinstance(body, bytes)
        else {"json": body}
    )
    answer = call(app, "POST", "/score", **kw)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]
    predict = call(app, "POST", "/predict", **kw)
    assert predict.status_code == status and words in predict.json()["error"]["message"]


def test_decorated_run_failures_inside_the_script_are_500_and_content_type_is_checked(
    tmp_path: Path,
) -> None:
    app = make_app(register(tmp_path, DECORATED, {"m.pkl": regressor()}))
    failed = call(app, "POST", "/score", json={"data": [[1.0, 2.0]], "scale": 0})
    assert failed.status_code == 500  # raised inside run() itself: the model's failure
    text = call(app, "POST", "/score", content=b'{"data": [[1, 2]]}')
    assert text.status_code == 415  # Microsoft's ObjectInput wants application/json
    assert text.json() == {"message": "Expects Content-Type to be application/json"}


def test_swagger_openapi_and_info_show_the_decorated_schema(tmp_path: Path) -> None:
    app = make_app(register(tmp_path, DECORATED, {"m.pkl": regressor()}))
    swagger = call(app, "GET", "/swagger.json").json()
    assert swagger["swagger"] == "2.0"
    service_input = swagger["definitions"]["ServiceInput"]
    # inference_schema's document as Microsoft serves it: every parameter of run() listed
    assert list(service_input["properties"]) == ["data", "scale", "request_headers"]
    assert service_input["example"] == {"data": [[1.0, 2.0]], "scale": 1.0, "request_headers": ""}
    assert swagger["definitions"]["ServiceOutput"]["example"] == [3.0]
    three = call(app, "GET", "/swagger.json?version=3").json()
    assert three["components"]["schemas"]["ServiceInput"] == service_input
    assert call(app, "GET", "/swagger.json?version=3.1").json()["openapi"] == "3.1.0"
    wrong = call(app, "GET", "/swagger.json?version=9")
    assert wrong.status_code == 404 and "is not valid" in wrong.json()["message"]
    info = call(app, "GET", "/info").json()
    assert info["input_schema"]["properties"]["data"]["type"] == "array"
    assert info["example"] == {"data": [[1.0, 2.0]], "scale": 1.0}
    document = call(app, "GET", "/openapi.json").json()
    assert document["components"]["schemas"]["Record"]["properties"]["scale"]["type"] == "number"
    assert (
        set(document["paths"]["/score"]) == {"get", "post", "options"}
        and "/swagger.json" in document["paths"]
    )
    from openapi_spec_validator import validate

    validate(document)
    validate(three)
    validate(swagger)


LISTING = """
    import json, os
    from pathlib import Path
    import helper

    def init():
        global found
        root = Path(os.environ["AZUREML_MODEL_DIR"])
        found = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())

    def run(raw_data):
        root = Path(os.environ["AZUREML_MODEL_DIR"])
        walked = sorted(name for _, _, names in os.walk(root) for name in names)
        inside = (root / "model/m.pkl").resolve().is_relative_to(root.resolve())
        return {
            "found": found,
            "walked": walked,
            "resolves_inside": inside,
            "helper": helper.NAME,
            "cwd": sorted(os.listdir(".")),
            "tail": root.parts[-3:],
        }
"""


def test_azureml_model_dir_holds_the_registered_files_only(tmp_path: Path) -> None:
    """In Azure ML the model folder holds no code: scripts glob it and refuse a second
    file (microsoft/dstoolkit-mlops-base). The script, its helpers and shipml's manifest
    stay in the app root (the working directory), not in AZUREML_MODEL_DIR."""
    ref = register(
        tmp_path,
        LISTING,
        {"model/m.pkl": regressor(), "scaler.pkl": regressor()},
        {"helper.py": "NAME = 'helper'\n"},
    )
    answer = call(make_app(ref), "POST", "/score", content=b"{}").json()
    assert answer["found"] == ["model/m.pkl", "scaler.pkl"]
    assert answer["walked"] == ["m.pkl", "scaler.pkl"]  # os.walk enters its folders
    # MLflow refuses a model file whose resolved path leaves the folder it was given: on one
    # filesystem the view holds hard links, which resolve inside it.
    assert answer["resolves_inside"] is True
    # As in Azure: .../azureml-models/NAME/VERSION (AutoML's scoring files log both from it)
    assert answer["tail"] == ["azureml-models", "s", "1"]
    assert answer["helper"] == "helper"
    assert {"score.py", "helper.py", "manifest.json", "scaler.pkl"} <= set(answer["cwd"])


COLLECTING = """
    import json, os
    import joblib
    import numpy as np
    from azureml.monitoring import ModelDataCollector

    def init():
        global model, inputs_dc, prediction_dc
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "m.pkl"))
        inputs_dc = ModelDataCollector("m", designation="inputs", feature_names=["a", "b"])
        prediction_dc = ModelDataCollector("m", identifier="predictions")

    def run(raw_data):
        data = np.array(json.loads(raw_data)["data"])
        result = model.predict(data)
        kept = [inputs_dc.collect(data), prediction_dc.collect(result)]
        return {"result": result.tolist(), "kept": kept}
"""


def test_v1_data_collection_scripts_run_and_collect_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """azureml-monitoring's ModelDataCollector collects only in AKS deployments, and its
    native library no longer loads on current Linux (it needs OpenSSL 1.0): shipml makes
    azureml.monitoring importable with collectors that do nothing, when nothing installed
    provides it."""
    with caplog.at_level("INFO", logger="shipml"):
        app = make_app(register(tmp_path, COLLECTING, {"m.pkl": regressor()}))
    answer = call(app, "POST", "/score", content=b'{"data": [[1.0, 2.0]]}').json()
    assert answer["kept"] == [None, None]
    assert answer["result"] == pytest.approx([3.0])
    assert sys.modules["azureml.monitoring"].__name__ == "shipml.scoring.azureml.monitoring"
    assert "data collection happens only in AKS deployments" in caplog.text


def test_a_swagger_document_beside_the_script_is_answered_as_written(tmp_path: Path) -> None:
    """Microsoft's server answers the user's swagger.json/swagger2.json for version 2 and
    swagger3.json for 3 (server/swagger.py), before generating anything; a top-level
    script brings them from its folder."""
    custom = {"swagger": "2.0", "info": {"title": "mine", "version": "7"}, "paths": {}}
    ref = register(
        tmp_path,
        PLAIN,
        {"model/sub/m.pkl": regressor()},
        {"swagger2.json": json.dumps(custom), "notes.txt": "not code"},
    )
    app = make_app(ref)
    assert call(app, "GET", "/swagger.json").json() == custom
    assert call(app, "GET", "/swagger.json?version=2.0").json() == custom
    generated = call(app, "GET", "/swagger.json?version=3").json()
    assert generated["components"]["schemas"]["ServiceInput"] == {"type": "object", "example": {}}
    version = Store().fetch(parse_reference(ref))
    assert "swagger2.json" in version.manifest.files
    assert "notes.txt" not in version.manifest.files  # not imported, not a swagger document


def test_a_swagger_document_that_is_not_json_fails_the_load_with_its_name(
    tmp_path: Path,
) -> None:
    ref = register(
        tmp_path, PLAIN, {"model/sub/m.pkl": regressor()}, {"swagger3.json": "{not json"}
    )
    with pytest.raises(LoadFailed, match=r"swagger3\.json beside the scoring script .* not valid"):
        make_app(ref)


RAW = """
    from azureml.contrib.services.aml_request import AMLRequest, rawhttp
    from azureml.contrib.services.aml_response import AMLResponse

    def init():
        pass

    @rawhttp
    def run(request: AMLRequest):
        if request.method == "GET":
            return AMLResponse(f"q={request.args.get('q')} {request.full_path}", 200)
        if request.method != "POST":
            return AMLResponse("bad method", 405)
        payload = request.get_json()
        headers = {"X-Extra": "a, b", "Content-Type": "text/csv"}
        return AMLResponse(",".join(map(str, payload["values"])), 201, headers)
"""


def test_rawhttp_gets_the_request_and_its_response_passes_through(tmp_path: Path) -> None:
    app = make_app(register(tmp_path, RAW))
    made = call(app, "POST", "/score", json={"values": [1, 2]})
    assert made.status_code == 201 and made.content == b"1,2"
    assert made.headers["content-type"] == "text/csv"
    assert made.headers.get_list("x-extra") == ["a", "b"]  # commas split, as Microsoft's
    got = call(app, "GET", "/score?q=7")
    assert got.status_code == 200 and got.text == "q=7 /score?q=7"
    assert got.headers["content-type"] == "text/html; charset=utf-8"  # Flask's default
    assert call(app, "OPTIONS", "/score").status_code == 405  # run() itself answered
    # the shims are importable but do not shadow the rest of the azureml namespace
    assert "azureml.contrib.services.aml_request" in sys.modules


def test_positional_only_run_is_refused_with_microsofts_words(tmp_path: Path) -> None:
    script = """
        def init():
            pass

        def run(data, /):
            return data
    """
    ref = register(tmp_path, script)
    with pytest.raises(LoadFailed, match=r"run\(\) cannot accept positional-only arguments"):
        make_app(ref)


def test_init_failure_is_final_and_names_the_missing_file(tmp_path: Path) -> None:
    script = """
        import os, joblib
        from inference_schema.schema_decorators import output_schema
        from inference_schema.parameter_types.standard_py_parameter_type import (
            StandardPythonParameterType,
        )

        def init():
            global model
            model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))

        @output_schema(StandardPythonParameterType([1.0]))
        def run(data):
            return data
    """
    ref = register(tmp_path, script, {"models/other.pkl": regressor()})
    with pytest.raises(LoadFailed) as failure:
        make_app(ref)
    message = failure.value.message
    assert "score.py failed in init() (score.py line 10, in init)" in message
    assert "FileNotFoundError" in message and "model.pkl does not exist" in message
    assert "models/other.pkl" in message  # what AZUREML_MODEL_DIR holds instead
    # The serving path: not retried, not masked by "output schema already defined"
    app = create_app(ServeSettings(model=ref), lambda: Store().fetch(parse_reference(ref)))

    async def start_and_ask() -> httpx.Response:
        app.service.start()
        for _ in range(200):
            if app.service.load_failure is not None:
                break
            await asyncio.sleep(0.02)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/health/ready")

    ready = asyncio.run(start_and_ask())
    assert ready.status_code == 503
    error = ready.json()["error"]
    assert error["code"] == "load_failed" and error["message"] == message
    assert "Traceback" in error["traceback"] and "joblib.load" in error["traceback"]
    assert "models/other.pkl" in " ".join(error["model_files"]) or error["model_files"]
    assert "already defined" not in json.dumps(error)


def test_get_model_path_is_refused_at_registration(tmp_path: Path) -> None:
    script = """
        from azureml.core.model import Model

        def init():
            global path
            path = Model.get_model_path("sklearn_mnist")

        def run(data):
            return path
    """
    with pytest.raises(ProjectError, match=r"line 6 calls Model.get_model_path\(\)"):
        register(tmp_path, script)


def test_values_json_dumps_cannot_write_are_written_sensibly() -> None:
    import datetime

    import pandas as pd

    from shipml.errors import ModelError
    from shipml.scoring.azureml.answers import dumps

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert json.loads(dumps(frame)) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert json.loads(dumps({"s": frame["a"], "i": np.int64(3), "f": np.float32(0.5)})) == {
        "s": [1, 2],
        "i": 3,
        "f": 0.5,
    }
    assert dumps(datetime.date(2026, 1, 2)) == b'"2026-01-02"'
    assert dumps([np.float64(0.1)]) == json.dumps([0.1]).encode()  # a float: as Microsoft's
    with pytest.raises(ModelError, match="cannot be written as JSON"):
        dumps(b"bytes")


def test_a_score_py_honours_aml_cors_origins_and_options_stays_the_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = register(tmp_path, PLAIN, {"model/sub/m.pkl": regressor()})
    without = make_app(ref)  # CORS off: OPTIONS /score is answered as Microsoft's server does
    plain = call(without, "OPTIONS", "/score", headers={"Origin": "https://page.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    monkeypatch.setenv("AML_CORS_ORIGINS", "https://page.example, not an origin")
    app = make_app(ref)
    asking = {"Origin": "https://page.example", "Access-Control-Request-Method": "POST"}
    preflight = call(app, "OPTIONS", "/score", headers=asking)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://page.example"
    assert preflight.headers["access-control-allow-methods"] == "POST, GET"
    answer = call(
        app, "POST", "/score", json={"data": [[1.0, 2.0]]}, headers={"Origin": asking["Origin"]}
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://page.example"
    # without the preflight's header, OPTIONS still reaches the script
    assert call(app, "OPTIONS", "/score", headers={"Origin": asking["Origin"]}).status_code == 200
