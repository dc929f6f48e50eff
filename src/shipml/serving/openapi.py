"""The OpenAPI 3.1 document of a running service, generated from its model's schema.

Generated once, when the model is ready, so the document describes the model actually
served, and every route the service answers: each operation's body as the service
checks it (serving/openapi_schemas.py), and every status it can answer, with the
headers that come with it. The statuses every route shares come from the HTTP front
(400 for a request that is not HTTP, 408, 431, 503 at the connection limit) and the
app (500); ``tests/integration/test_fuzz.py`` holds the service to the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipml import __version__
from shipml.serving import openapi_schemas as schemas
from shipml.serving.oip import output_metadata

JSON = "application/json"
ERRORS = {
    "400": "The request is malformed: not HTTP, not JSON (invalid_json), or not a valid "
    "request for this route",
    "401": "Missing or wrong API key (unauthorized)",
    "404": "No such model, version or file here",
    "408": "The headers or the body came too slowly (request_timeout)",
    "413": "The body is larger than SHIPML_MAX_BODY_BYTES (payload_too_large)",
    "415": "The script's @input_schema takes JSON: send Content-Type: application/json",
    "422": "The body does not fit the input schema, or the model refused it; the message "
    "names the field (invalid_input)",
    "431": "The request line and headers are too large, or too many (headers_too_large)",
    "500": "The model failed; the message carries the request id for the log (model_error)",
    "405": "Not a preflight: OPTIONS without Access-Control-Request-Method",
    "503": "Not ready yet (not_ready: the message and 'state', 'attempt', 'reason' say why), "
    "or overloaded (too many requests or connections); retry after Retry-After",
}
EVERY_ROUTE = ("400", "408", "431", "500", "503")


@dataclass
class Facts:
    """What the document is made from (the service's, once its model is loaded)."""

    info: dict[str, Any]
    example_output: Any = None
    auth: bool = False
    closed: frozenset[str] = frozenset()
    static_files: list[str] = field(default_factory=list)
    swagger_versions: list[str] = field(default_factory=list)  # score.py models only
    raw_script: bool = False  # a @rawhttp score.py answers what it likes
    cors: bool = False  # browsers' preflights are answered on every route


def build_openapi(facts: Facts) -> dict[str, Any]:
    info = facts.info
    components: dict[str, Any] = {
        "Error": schemas.ERROR,
        "OipError": schemas.OIP_ERROR,
        "Result": schemas.result(info.get("output_schema"), facts.example_output),
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{info['name']} (shipml)",
            "version": str(info["version"]),
            "description": (
                f"Model {info['ref']} ({info['digest']}), served by shipml {__version__}. "
                "Send one record to get one result, or a list of records to get a list. "
                "Every response carries X-Request-ID: the request's own if it sent a safe "
                "one, else a new one."
            ),
        },
        "paths": {},
        "components": {"schemas": components},
    }
    paths = document["paths"]
    azureml = info.get("contract") == "azureml"
    record = info.get("input_schema")
    if record and not azureml:
        components["Record"] = schemas.record(record, facts.closed)
        components["Row"] = schemas.row(components["Record"])
    paths["/predict"] = {"post": _predict(facts, components)}
    if azureml:
        components["AzureMLError"] = schemas.AZUREML_ERROR
        if record:  # run()'s @input_schema, as inference_schema writes it
            components["Record"] = record
        paths.update(_score_routes(facts))
    paths.update(_service_routes(facts))
    paths.update(_oip_routes(facts, None if azureml else components.get("Record"), components))
    if facts.cors:
        for path, operations in paths.items():
            operations.setdefault("options", _preflight(facts, path))
    if facts.auth:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document


# -- building blocks -------------------------------------------------------------------


def _headers(status: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": schemas.REQUEST_ID}
    if status == "503":
        headers["Retry-After"] = {"description": "Seconds to wait", "schema": {"type": "string"}}
    if status == "401":
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
    return headers


def _ok(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": _headers("200"), "content": content}


def _json_ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _ok(description, {JSON: {"schema": schema}})


def _errors(codes: tuple[str, ...], style: str = "Error") -> dict[str, Any]:
    """Error responses; the front's own refusals are shipml's Error on every route."""
    own = {"$ref": f"#/components/schemas/{style}"}
    schema = own if style == "Error" else {"anyOf": [own, {"$ref": "#/components/schemas/Error"}]}
    return {
        code: {
            "description": ERRORS[code],
            "headers": _headers(code),
            "content": {JSON: {"schema": schema}},
        }
        for code in sorted(set(codes))
    }


def _operation(
    facts: Facts,
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    codes: tuple[str, ...] = (),
    *,
    protected: bool = True,
    style: str = "Error",
    **more: Any,
) -> dict[str, Any]:
    if protected and facts.auth:
        codes = (*codes, "401")
    operation = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": ok, **_errors((*EVERY_ROUTE, *codes), style)},
        **more,
    }
    if not protected:
        operation["security"] = []
    return operation


def _body(schema: dict[str, Any], **media: Any) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema, **media}}}


def _preflight(facts: Facts, path: str) -> dict[str, Any]:
    """A browser's CORS preflight (serving/cors.py); without its header, a plain 405."""
    allowed = {
        "description": "Preflight answered",
        "headers": {
            "X-Request-ID": schemas.REQUEST_ID,
            "Access-Control-Allow-Origin": {"required": True, "schema": {"type": "string"}},
            "Access-Control-Allow-Methods": {"required": True, "schema": {"type": "string"}},
            "Vary": {"required": True, "schema": {"type": "string"}},
        },
    }
    headers = [
        {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}},
        {
            "name": "Access-Control-Request-Method",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
        },
    ]
    operation = _operation(
        facts,
        f"preflight{path.replace('/', '_').replace('{', '').replace('}', '')}",
        "A browser asking whether its page's origin may call (CORS)",
        allowed,
        ("405",),
        protected=False,
        parameters=headers,
    )
    responses = operation["responses"]
    responses["204"] = responses.pop("200")
    responses["403"] = {
        "description": "This origin may not (origin_not_allowed)",
        "headers": _headers("403"),
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return operation


# -- the routes ------------------------------------------------------------------------


def _predict(facts: Facts, components: dict[str, Any]) -> dict[str, Any]:
    info = facts.info
    result = {"$ref": "#/components/schemas/Result"}
    answer: dict[str, Any] = {"schema": {"anyOf": [result, {"type": "array", "items": result}]}}
    if facts.example_output is not None:
        answer["example"] = facts.example_output
    if info.get("contract") == "azureml":
        return _operation(
            facts,
            "predict",
            "What run() answers for the body, as at /score (errors in shipml's form)",
            _ok("What run() returned", _script_answer(facts)),
            ("413", "415", "422"),
            requestBody=_script_body(facts),
        )
    if "Record" in components:
        body = _body(schemas.predict_body(), **_examples(info.get("example")))
    else:  # a predictor class without an input schema takes any records
        body = _body({"anyOf": [{"type": "object"}, {"type": "array"}]})
    return _operation(
        facts,
        "predict",
        "Predict for one record or a list of records (or rows)",
        {"description": "The prediction(s)", "headers": _headers("200"), "content": {JSON: answer}},
        ("413", "422"),
        requestBody=body,
    )


def _examples(example: Any) -> dict[str, Any]:
    if example is None:
        return {}
    return {
        "examples": {
            "one": {"summary": "One record, one result", "value": example},
            "many": {"summary": "A list of records, a list of results", "value": [example] * 2},
            "inputs": {"summary": 'The {"inputs": [...]} form', "value": {"inputs": [example]}},
        }
    }


def _script_body(facts: Facts) -> dict[str, Any]:
    declared = facts.info.get("input_schema")
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Record"} if declared else {}}
    if facts.info.get("example") is not None:
        media["example"] = facts.info["example"]
    # Microsoft's server hands run() an empty body too: the script decides
    return {"required": False, "content": {JSON: media}}


def _script_answer(facts: Facts) -> dict[str, Any]:
    answer: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Result"}}
    if facts.example_output is not None:
        answer["example"] = facts.example_output
    if facts.raw_script:  # @rawhttp: the script's own response, any type
        return {"*/*": {"schema": {}}}
    return {JSON: answer}


def _score_routes(facts: Facts) -> dict[str, Any]:
    """Azure ML's routes of a score.py model (errors as ``{"message": ...}``)."""
    ok = _ok("What run() returned", _script_answer(facts))
    codes = ("413", "415", "422")
    style = "AzureMLError"
    score = {
        "post": _operation(
            facts,
            "score",
            "Azure ML's scoring route",
            ok,
            codes,
            style=style,
            requestBody=_script_body(facts),
        ),
        "get": _operation(
            facts,
            "score_get",
            "run() with the query parameters as its input (each read as JSON when it parses)",
            ok,
            codes,
            style=style,
        ),
        "options": _operation(
            facts,
            "score_options",
            "Answered as Microsoft's server does (an empty page), or by a @rawhttp script",
            _ok("Empty", {"text/html": {"schema": {"type": "string"}}}),
            style=style,
        )
        if not facts.raw_script
        else _operation(facts, "score_options", "run()'s answer", ok, style=style),
    }
    versions = facts.swagger_versions
    swagger = _operation(
        facts,
        "swagger",
        "Azure ML's service description (?version= one of the supported ones)",
        _json_ok("Swagger 2.0 or OpenAPI 3 document", {"type": "object"}),
        ("404",),
        protected=False,
        style=style,
        parameters=[
            {
                "name": "version",
                "in": "query",
                "required": False,
                "schema": {"enum": versions} if versions else {"type": "string"},
            }
        ],
    )
    return {"/score": score, "/swagger.json": {"get": swagger}}


INFO = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "ref": {"type": "string"},
        "digest": {"type": "string"},
        "created": {"type": "string"},
        "contract": {"type": "string"},
        "framework": {"type": "object"},
        "libraries": {"type": "object"},
        "runtime": {"type": "object"},
        "input_schema": {"type": ["object", "null"]},
        "output_schema": {"type": ["object", "null"]},
        "metrics": {"type": ["object", "null"]},
        "server": {"type": "object"},
    },
    "required": ["name", "version", "ref", "digest", "contract", "server"],
}


def _service_routes(facts: Facts) -> dict[str, Any]:
    return _health_routes(facts) | _page_routes(facts)


def _health_routes(facts: Facts) -> dict[str, Any]:
    """The model card and the probes."""
    live = {"type": "object", "properties": {"status": {"const": "alive"}}, "required": ["status"]}
    ready = {
        "type": "object",
        "properties": {"status": {"const": "ready"}, "model": {"type": "string"}},
        "required": ["status", "model"],
    }
    return {
        "/info": {"get": _operation(facts, "info", "The model card", _json_ok("OK", INFO))},
        "/health/live": {
            "get": _operation(
                facts,
                "live",
                "Liveness: answers while the process lives",
                _json_ok("Alive", live),
                protected=False,
            )
        },
        "/health/ready": {
            "get": _operation(
                facts,
                "ready",
                "Readiness: 200 once the model is loaded",
                _json_ok("Ready", ready),
                protected=False,
            )
        },
    }


def _page_routes(facts: Facts) -> dict[str, Any]:
    """Metrics, this document, the playground and its files."""
    page = {"text/html": {"schema": {"type": "string"}}}
    asset_types = {
        "js": "text/javascript",
        "css": "text/css",
        "svg": "image/svg+xml",
        "png": "image/png",
        "ico": "image/x-icon",
        "html": "text/html",
    }
    assets = {
        asset_types[kind]: {"schema": {"type": "string"}}
        for kind in sorted({name.rsplit(".", 1)[-1] for name in facts.static_files})
        if kind in asset_types
    }
    return {
        "/metrics": {
            "get": _operation(
                facts,
                "metrics",
                "Prometheus metrics",
                _ok("Prometheus text format", {"text/plain": {"schema": {}}}),
            )
        },
        "/openapi.json": {
            "get": _operation(
                facts,
                "openapi",
                "This document",
                _json_ok("OpenAPI 3.1", {"type": "object"}),
                protected=False,
            )
        },
        "/": {
            "get": _operation(
                facts, "playground", "The web playground", _ok("Page", page), protected=False
            )
        },
        "/docs": {
            "get": _operation(
                facts, "docs", "This document, to read", _ok("Page", page), protected=False
            )
        },
        "/static/{file}": {
            "get": _operation(
                facts,
                "asset",
                "The pages' files",
                _ok("The file", assets or page),
                ("404",),
                protected=False,
                parameters=[
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": sorted(facts.static_files)},
                    }
                ],
            )
        },
    }


def _oip_routes(
    facts: Facts, record: dict[str, Any] | None, components: dict[str, Any]
) -> dict[str, Any]:
    """The Open Inference Protocol (errors as ``{"error": "..."}``). Both infer routes refer
    to one ``InferRequest`` component."""
    info = facts.info
    outputs = output_metadata(info.get("output_schema"))
    components["InferRequest"] = schemas.infer_request(record, outputs, components)
    name = {"name": "name", "in": "path", "required": True, "schema": {"enum": [info["name"]]}}
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"enum": [str(info["version"])]},
    }
    routes = _oip_server_routes(facts)
    for base, parameters, suffix in (
        ("/v2/models/{name}", [name], ""),
        ("/v2/models/{name}/versions/{version}", [name, version], "_version"),
    ):
        routes |= _oip_model_routes(facts, base, parameters, suffix)
    return routes


def _oip_server_routes(facts: Facts) -> dict[str, Any]:
    """The server's own: metadata and health."""
    style = "OipError"
    flag = {"type": "object", "properties": {}, "required": []}
    return {
        "/v2": {
            "get": _operation(
                facts,
                "v2_server",
                "Server metadata",
                _json_ok(
                    "OK",
                    {
                        "type": "object",
                        "properties": {
                            "name": {"const": "shipml"},
                            "version": {"type": "string"},
                            "extensions": {"type": "array"},
                        },
                        "required": ["name", "version", "extensions"],
                    },
                ),
                style=style,
            )
        },
        "/v2/health/live": {
            "get": _operation(
                facts,
                "v2_live",
                "Liveness",
                _json_ok(
                    "Live", {**flag, "properties": {"live": {"const": True}}, "required": ["live"]}
                ),
                protected=False,
                style=style,
            )
        },
        "/v2/health/ready": {
            "get": _operation(
                facts,
                "v2_ready",
                "Readiness",
                _json_ok(
                    "Ready",
                    {**flag, "properties": {"ready": {"const": True}}, "required": ["ready"]},
                ),
                protected=False,
                style=style,
            )
        },
    }


def _oip_model_schemas(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model metadata and the inference answer, for this model."""
    tensors = {"type": "array", "items": schemas.TENSOR_METADATA}
    metadata = {
        "type": "object",
        "properties": {
            "name": {"const": info["name"]},
            "versions": {"type": "array"},
            "platform": {"type": "string"},
            "inputs": tensors,
            "outputs": tensors,
        },
        "required": ["name", "versions", "platform", "inputs", "outputs"],
    }
    answer = {
        "type": "object",
        "properties": {
            "model_name": {"const": info["name"]},
            "model_version": {"const": str(info["version"])},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": schemas.TENSOR_OUT},
        },
        "required": ["model_name", "model_version", "id", "outputs"],
    }
    return metadata, answer


def _oip_model_routes(
    facts: Facts,
    base: str,
    parameters: list[dict[str, Any]],
    suffix: str,
) -> dict[str, Any]:
    """The model's: metadata, readiness, configuration and inference, under ``base``."""
    info = facts.info
    style = "OipError"
    flag = {"type": "object", "properties": {}, "required": []}
    metadata, answer = _oip_model_schemas(info)
    routes: dict[str, Any] = {}
    routes[base] = {
        "get": _operation(
            facts,
            f"v2_metadata{suffix}",
            "Model metadata",
            _json_ok("OK", metadata),
            ("404",),
            style=style,
            parameters=parameters,
        )
    }
    routes[f"{base}/ready"] = {
        "get": _operation(
            facts,
            f"v2_model_ready{suffix}",
            "Model readiness",
            _json_ok(
                "Ready",
                {
                    **flag,
                    "properties": {"name": {"const": info["name"]}, "ready": {"const": True}},
                    "required": ["name", "ready"],
                },
            ),
            ("404",),
            protected=False,
            style=style,
            parameters=parameters,
        )
    }
    routes[f"{base}/config"] = {
        "get": _operation(
            facts,
            f"v2_config{suffix}",
            "Triton's model configuration",
            _json_ok("OK", {"type": "object"}),
            ("404",),
            style=style,
            parameters=parameters,
        )
    }
    routes[f"{base}/infer"] = {
        "post": _operation(
            facts,
            f"v2_infer{suffix}",
            "Infer (one row shown; any number of rows, and Triton's binary tensor data, "
            "are described in docs/http-api.md)",
            _ok(
                "The outputs (JSON, or JSON then binary tensor data)",
                {
                    JSON: {"schema": answer},
                    "application/octet-stream": {},
                },
            ),
            ("404", "413"),
            style=style,
            parameters=parameters,
            requestBody=_body({"$ref": "#/components/schemas/InferRequest"}),
        )
    }
    return routes
