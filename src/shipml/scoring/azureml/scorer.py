"""The Azure ML scoring contract: an unchanged ``score.py`` with ``init()`` and ``run()``.

The script is imported and ``init()`` called once per worker (:mod:`.runtime`), ``run()``
is inspected once and called per request the way Microsoft's server calls it
(:mod:`.inputs`), and what it returns is written the way Microsoft's server writes it
(:mod:`.answers`). ``/score``, ``/predict`` and the Open Inference Protocol routes all
call it through here.

A failure inside an ``@input_schema`` decorator, before the script's own ``run`` was
entered (the body does not convert to the declared type), is the client's: a 422 with
the decorator's message. Anything raised once ``run`` itself is running is the model's:
a 500, its traceback in the log. A ``run()`` that takes longer than ``SCORING_TIMEOUT_MS``
is stopped (:mod:`.deadline`): a 500 with Microsoft's message.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

import orjson

from shipml.errors import InvalidInput, InvalidJSON, LoadFailed, ProjectError
from shipml.scoring.azureml import deadline, raw, runtime
from shipml.scoring.azureml.answers import Ran, ScoreAnswer, answer
from shipml.scoring.azureml.call import ScoreCall
from shipml.scoring.azureml.inputs import REQUEST_HEADERS, ObjectInput, analyse_run
from shipml.scoring.azureml.script_check import check_script
from shipml.scoring.azureml.swagger import VERSIONS, supported_versions, swagger, user_documents
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import Manifest
from shipml.store.paths import inside


class AzureMLScorer:
    contract = "azureml"
    batchable = False
    output_schema: dict[str, Any] | None = None

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        # Read first: a bad value is reported before the script's init() runs.
        self.timeout_ms = deadline.timeout_ms()
        self.worker_timeout_s = deadline.worker_timeout_s()
        try:
            self._load(model_dir, manifest)
        except ProjectError as exc:  # the script as written cannot be served: final too
            raise LoadFailed(exc.message) from None

    def _load(self, model_dir: Path, manifest: Manifest) -> None:
        script = inside(model_dir, manifest.scoring["script"]).resolve()
        check_script(script, manifest.files)
        module = runtime.import_script(
            script,
            model_dir,
            manifest.scoring.get("model_files"),
            (manifest.name, manifest.version),
        )
        for name in ("init", "run"):
            if not hasattr(module, name):
                raise ProjectError(
                    f"User script at {script} does not have a {name}() function defined."
                )
        run = module.run
        driver = getattr(module, "driver_module", None)  # Azure SDKs' proxy scripts
        if driver is not None and hasattr(driver, "run"):
            run = driver.run
        self.decorated = _schema_decorated(run)
        self.signature = analyse_run(run, raw.rawhttp_requested(), self.decorated)
        runtime.call_init(module.init, script, model_dir)
        self._run: Callable[..., Any] = run
        self._user_code = _innermost(run)
        self.script = script
        self.user_swagger = user_documents(model_dir)  # the app root, as Microsoft reads it
        schema = manifest.input_schema
        self.schema = InputSchema(schema) if schema else None
        # What the decorators declare: shown by /swagger.json, /openapi.json and /info.
        self.decorated_schemas = _decorated_schemas(run)
        self.input_schema: dict[str, Any] | None = None
        self.example: Any = None
        if self.decorated_schemas is not None:
            given_input, given_output = self.decorated_schemas
            # /swagger.json keeps inference_schema's document as it is; /info and
            # /openapi.json leave out request_headers, which comes from the headers.
            self.input_schema = _without_headers(
                {k: v for k, v in given_input.items() if k != "example"}
            )
            example = given_input.get("example")
            if isinstance(example, dict):
                example = {k: v for k, v in example.items() if k != REQUEST_HEADERS}
            self.example = example
            if given_output != {"type": "object"}:  # inference_schema's "none declared"
                self.output_schema = given_output

    @property
    def raw(self) -> bool:
        return self.signature.kind == "raw"

    # -- requests ------------------------------------------------------------------------

    def parse(self, call: ScoreCall) -> Prepared:
        """The arguments of ``run()`` for an HTTP request (raises 4xx errors)."""
        if self.schema is not None and call.method == "POST" and not self.raw:
            self._check_schema(self.schema, call.body)
        arguments = self.signature.parser(call)
        if self.signature.takes_headers:
            arguments[REQUEST_HEADERS] = call.header_dict()
        return Prepared(arguments, 1, True)

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        """The arguments for a parsed JSON body (Open Inference Protocol, the warm-up)."""
        call = ScoreCall(
            "POST", "/score", b"", [(b"content-type", b"application/json")], bytes(body)
        )
        if isinstance(self.signature.parser, ObjectInput) and not isinstance(payload, dict):
            raise InvalidInput("POST body should be a JSON dictionary.")
        return self.parse(call)

    @staticmethod
    def _check_schema(schema: InputSchema, body: bytes) -> None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
        items, _, rows = split_payload(payload)
        schema.matrix(items, rows)  # validation only: run() gets the body as it came

    def predict(self, data: Any) -> Ran:
        """``run()`` on one request's arguments: what it returned, and how long it took."""
        try:
            with deadline.WATCHDOG.limit(self.call_timeout):
                started = time.perf_counter()
                output = self._run(**data)
                return Ran(output, (time.perf_counter() - started) * 1000)
        except deadline.Expired:
            raise self.timed_out() from None
        except Exception as exc:
            if self.decorated and not _entered(exc.__traceback__, self._user_code):
                message = str(exc) or type(exc).__name__
                raise InvalidInput(
                    f"the body does not fit run()'s @input_schema: {message}"
                ) from None
            raise

    @property
    def call_timeout(self) -> float:
        """``SCORING_TIMEOUT_MS`` in seconds: the batcher answers the client then."""
        return self.timeout_ms / 1000

    @property
    def restart_after(self) -> float | None:
        """``WORKER_TIMEOUT`` in seconds (None: never): a ``run()`` still running then
        restarts the worker (serving/deadlines.py)."""
        return float(self.worker_timeout_s) if self.worker_timeout_s else None

    def worker_timed_out(self) -> deadline.WorkerTimeout:
        """What the client of a ``run()`` past ``WORKER_TIMEOUT`` is answered."""
        return deadline.WorkerTimeout(self.worker_timeout_s)

    def timed_out(self) -> deadline.ScoringTimeout:
        """What a client of a ``run()`` past ``SCORING_TIMEOUT_MS`` is answered."""
        return deadline.ScoringTimeout(self.timeout_ms)

    def answer(self, ran: Ran) -> ScoreAnswer:
        return answer(ran)

    def jsonable(self, ran: Ran) -> Any:
        """The answer as a JSON value, for callers that write JSON themselves (the Open
        Inference Protocol, the OpenAPI example): what a client would parse."""
        written = answer(ran)
        if written.content_type.startswith("application/json"):
            try:
                return json.loads(written.body)
            except ValueError:
                pass
        return written.body.decode("utf-8", "replace")

    def swagger_versions(self) -> list[str]:
        """The ``?version=`` values /swagger.json answers for this script."""
        supported = supported_versions(self._run)
        return [alias for major in supported for alias in VERSIONS[major]]

    def swagger(self, version: str | None, title: str, service_version: str) -> dict[str, Any]:
        schemas = self.decorated_schemas or (None, None)
        return swagger(version, self._run, schemas, title, service_version, user=self.user_swagger)

    def concat(self, parts: list[Any]) -> Any:
        raise InvalidInput("score.py models are not batchable")


def _schema_decorated(run: Callable[..., Any]) -> bool:
    util = sys.modules.get("inference_schema.schema_util")
    return bool(util is not None and util.is_schema_decorated(run))


def _decorated_schemas(run: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """inference_schema's input and output schemas of ``run`` (with their examples)."""
    util = sys.modules.get("inference_schema.schema_util")
    if util is None or not util.is_schema_decorated(run):
        return None
    return util.get_input_schema(run), util.get_output_schema(run)


def _without_headers(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    if isinstance(properties, dict) and REQUEST_HEADERS in properties:
        schema = {
            **schema,
            "properties": {k: v for k, v in properties.items() if k != REQUEST_HEADERS},
        }
    return schema


def _innermost(function: Callable[..., Any]) -> CodeType | None:
    """The code of the script's own ``run`` under its decorators (``__wrapped__`` chain)."""
    current: Any = function
    for _ in range(100):
        wrapped = getattr(current, "__wrapped__", None)
        if wrapped is None:
            break
        current = wrapped
    return getattr(current, "__code__", None)


def _entered(tb: TracebackType | None, code: CodeType | None) -> bool:
    """Did the exception pass through the script's own ``run`` (was it entered)?"""
    if code is None:
        return True  # cannot tell: treat it as the model's failure
    return any(frame.f_code is code for frame, _ in traceback.walk_tb(tb))
