"""The OpenAPI 3.1 document of a running service, generated from its model's schema.

Generated once, when the model is ready, so the document always describes the model
actually being served: its field names and types, an example request and response,
every error the service can answer and, when keys are configured, the auth schemes.
"""

from __future__ import annotations

from typing import Any

from shipml import __version__

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "examples": ["invalid_input"]},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
            "required": ["code", "message", "request_id"],
        }
    },
    "required": ["error"],
}
ERRORS = {
    "400": "The body is not valid JSON (code invalid_json)",
    "401": "Missing or wrong API key (code unauthorized)",
    "413": "The body is larger than the limit (code payload_too_large)",
    "422": "The body does not fit the input schema; the message names the field (invalid_input)",
    "500": "The model failed; the message carries the request id for the log (model_error)",
    "503": "Not ready yet or overloaded; retry after Retry-After (not_ready, overloaded)",
}


def build_openapi(info: dict[str, Any], example_output: Any, auth: bool) -> dict[str, Any]:
    record = info.get("input_schema") or {"type": "object"}
    result = info.get("output_schema") or {}
    example = info.get("example")
    request_examples: dict[str, Any] = {}
    if example is not None:
        request_examples = {
            "one": {"summary": "One record, one result", "value": example},
            "many": {
                "summary": "A list of records, a list of results",
                "value": [example, example],
            },
            "inputs": {"summary": 'The {"inputs": [...]} form', "value": {"inputs": [example]}},
        }
    predict_answer: dict[str, Any] = {
        "schema": {
            "oneOf": [
                {"$ref": "#/components/schemas/Result"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
            ]
        }
    }
    if example_output is not None:
        predict_answer["example"] = example_output
    json_ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{info['name']} (shipml)",
            "version": str(info["version"]),
            "description": (
                f"Model {info['ref']} ({info['digest']}), served by shipml {__version__}. "
                "Send one record to get one result, or a list of records to get a list."
            ),
        },
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict for one record or a list of records",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Record"},
                                        {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Record"},
                                        },
                                        {
                                            "type": "object",
                                            "properties": {"inputs": {"type": "array"}},
                                            "required": ["inputs"],
                                        },
                                    ]
                                },
                                **({"examples": request_examples} if request_examples else {}),
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The prediction(s)",
                            "content": {"application/json": predict_answer},
                        },
                        **_errors("400", "401", "413", "422", "500", "503"),
                    },
                }
            },
            "/info": {
                "get": {
                    "operationId": "info",
                    "summary": "The model card",
                    "responses": {"200": json_ok, **_errors("401", "503")},
                }
            },
            "/health/live": {
                "get": {
                    "operationId": "live",
                    "summary": "Liveness probe",
                    "security": [],
                    "responses": {"200": json_ok},
                }
            },
            "/health/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: 200 once the model is loaded",
                    "security": [],
                    "responses": {"200": json_ok, **_errors("503")},
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {}},
                        }
                    },
                }
            },
            **_oip_infer(info),
        },
        "components": {"schemas": {"Record": record, "Result": result, "Error": ERROR_SCHEMA}},
    }
    if info.get("contract") == "azureml":
        _score_script(document, info, example_output)
    if auth:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document


def _score_script(document: dict[str, Any], info: dict[str, Any], example_output: Any) -> None:
    """A score.py takes one body as run() wants it (the decorated schema, if any), not
    lists of records; it also answers at Azure ML's /score and /swagger.json."""
    body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Record"}}
    if info.get("example") is not None:
        body["example"] = info["example"]
    answer: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Result"}}
    if example_output is not None:
        answer["example"] = example_output
    operation = {
        "requestBody": {"required": True, "content": {"application/json": body}},
        "responses": {
            "200": {"description": "What run() returned", "content": {"application/json": answer}},
            **_errors("400", "401", "413", "422", "500", "503"),
        },
    }
    paths = document["paths"]
    paths["/predict"]["post"].update(operation)
    paths["/score"] = {
        "post": {
            "operationId": "score",
            "summary": 'Azure ML\'s scoring route (errors as {"message": ...})',
            **operation,
        },
        "get": {
            "operationId": "score_get",
            "summary": "run()'s inputs as query parameters, each read as JSON",
            "responses": {"200": operation["responses"]["200"]},
        },
    }
    paths["/swagger.json"] = {
        "get": {
            "operationId": "swagger",
            "summary": "Azure ML's service description (?version=2, 3 or 3.1)",
            "security": [],
            "responses": {"200": {"description": "Swagger 2.0 or OpenAPI 3 document"}},
        }
    }


def _errors(*codes: str) -> dict[str, Any]:
    return {
        code: {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _oip_infer(info: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's infer routes (docs/http-api.md says the rest)."""
    error = {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                }
            }
        }
    }
    errors = {
        "400": "The request is malformed or does not fit the model's inputs",
        "401": ERRORS["401"],
        "404": "Another model name or version",
        "413": ERRORS["413"],
        "500": "The model raised",
        "503": "The model is loading, or the worker is overloaded",
    }
    inference = {
        "type": "object",
        "required": ["inputs"],
        "properties": {"id": {"type": "string"}, "inputs": {"type": "array"}},
    }
    binary = {"description": "The JSON part, then binary tensor data (Triton's extension)"}
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [info["name"]]},
    }
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [str(info["version"])]},
    }
    routes: dict[str, Any] = {}
    for path, parameters in (
        ("/v2/models/{name}/infer", [name]),
        ("/v2/models/{name}/versions/{version}/infer", [name, version]),
    ):
        routes[path] = {
            "post": {
                "operationId": "v2_infer" if len(parameters) == 1 else "v2_infer_version",
                "summary": "Open Inference Protocol v2 infer",
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": inference},
                        "application/octet-stream": {"schema": binary},
                    },
                },
                "responses": {
                    "200": {
                        "description": "The outputs (JSON, or JSON then binary tensor data)",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/octet-stream": {},
                        },
                    },
                    **{code: {"description": text, **error} for code, text in errors.items()},
                },
            }
        }
    return routes
