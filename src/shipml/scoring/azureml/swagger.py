"""``GET /swagger.json``: the service's description in the form Azure ML clients read.

Microsoft's server answers ``/swagger.json?version=2`` (the default), ``3`` or ``3.1``
with a document whose ``ServiceInput`` and ``ServiceOutput`` definitions are the
schemas inference_schema derived from ``run()``'s decorators (an empty object schema
for an undecorated ``run``). Tools such as Azure ML studio and Power BI read those two
definitions; shipml writes the same ones under the same names. A version the
decorators do not support (inference_schema decides: OpenAPI 2 cannot describe
mixed-type arrays) is a 404 with Microsoft's message.

A document the user wrote takes precedence, as in Microsoft's server: ``swagger.json``
or ``swagger2.json`` (version 2), ``swagger3.json`` and ``swagger3.1.json`` in the app
root (the code folder, stored beside the script) are answered as they are, and make
their version available even when the decorators would not.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipml.errors import NotFound, ProjectError

# version -> the spellings a client may ask for (Microsoft's aliases)
VERSIONS = {"2": ("2", "2.0"), "3": ("3", "3.0"), "3.1": ("3.1",)}
UNDECORATED = {"type": "object", "example": {}}
# version -> the files Microsoft's server reads from the app root, first found wins
USER_FILES = {
    "2": ("swagger.json", "swagger2.json"),
    "3": ("swagger3.json",),
    "3.1": ("swagger3.1.json",),
}


def user_documents(app_root: Path) -> dict[str, Any]:
    """The swagger documents the user wrote, by version, read once at load."""
    found: dict[str, Any] = {}
    for major, names in USER_FILES.items():
        for name in names:
            path = app_root / name
            if not path.is_file():
                continue
            try:
                found[major] = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ProjectError(
                    f"{name} beside the scoring script is answered for /swagger.json, but it "
                    f"is not valid JSON ({exc}): fix it or remove it"
                ) from None
            break
    return found


def supported_versions(run: Callable[..., Any]) -> list[str]:
    util = sys.modules.get("inference_schema.schema_util")
    offered = set(util.get_supported_versions(run)) if util else {"2.0", "3.0", "3.1"}
    return sorted(v for v, aliases in VERSIONS.items() if offered & set(aliases))


def swagger(
    asked: str | None,
    run: Callable[..., Any],
    schemas: tuple[dict[str, Any] | None, dict[str, Any] | None],
    title: str,
    version: str,
    *,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    asked = asked if asked is not None else "2"
    user = user or {}
    supported = sorted(set(supported_versions(run)) | set(user))
    valid = {alias for aliases in VERSIONS.values() for alias in aliases}
    if asked not in valid:
        raise NotFound(
            f"Swagger version [{asked}] is not valid. Supported versions: [{', '.join(supported)}]."
        )
    major = next(v for v, aliases in VERSIONS.items() if asked in aliases)
    if major not in supported:
        raise NotFound(
            f"Swagger version [{asked}] is not supported for the scoring script. "
            f"Supported swagger versions: [{', '.join(supported)}]."
        )
    if major in user:
        document: dict[str, Any] = user[major]
        return document
    given_input, given_output = schemas
    service_input = given_input or UNDECORATED
    service_output = given_output or (UNDECORATED if given_input is None else {"type": "object"})
    if major == "2":
        return _openapi2(title, version, service_input, service_output)
    return _openapi3(title, version, service_input, service_output, major)


def _info(title: str, version: str) -> dict[str, str]:
    return {
        "title": title,
        "description": f"API specification for the Azure Machine Learning service {title}",
        "version": version,
    }


ERROR = {"type": "object", "properties": {"message": {"type": "string"}}}
HEALTH = "Simple health check endpoint to ensure the service is up at any given point."
SCORE = "Run web service's model and get the prediction output"


def _openapi2(
    title: str, version: str, service_input: dict[str, Any], service_output: dict[str, Any]
) -> dict[str, Any]:
    error = {
        "description": "The service failed to execute due to an error.",
        "schema": {"$ref": "#/definitions/ErrorResponse"},
    }
    return {
        "swagger": "2.0",
        "info": _info(title, version),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "Bearer": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "For example: Bearer abc123",
            }
        },
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": HEALTH,
                    "responses": {
                        "200": {"description": "Healthy", "schema": {"type": "string"}},
                        "default": error,
                    },
                }
            },
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": SCORE,
                    "security": [{"Bearer": []}],
                    "parameters": [
                        {
                            "name": "serviceInputPayload",
                            "in": "body",
                            "description": "The input payload for executing the real-time "
                            "machine learning service.",
                            "schema": {"$ref": "#/definitions/ServiceInput"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The service processed the input correctly "
                            "and provided a result prediction, if applicable.",
                            "schema": {"$ref": "#/definitions/ServiceOutput"},
                        },
                        "default": error,
                    },
                }
            },
            "/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "schema": {"type": "string"},
                        },
                        "default": error,
                    },
                }
            },
        },
        "definitions": {
            "ServiceInput": service_input,
            "ServiceOutput": service_output,
            "ErrorResponse": ERROR,
        },
    }


def _openapi3(
    title: str,
    version: str,
    service_input: dict[str, Any],
    service_output: dict[str, Any],
    major: str,
) -> dict[str, Any]:
    def json_body(ref: str) -> dict[str, Any]:
        return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}

    error = {
        "description": "The service failed to execute due to an error.",
        "content": json_body("ErrorResponse"),
    }
    return {
        "openapi": "3.1.0" if major == "3.1" else "3.0.3",
        "info": _info(title, version),
        "security": [{"Bearer": []}],
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": HEALTH,
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "default": error,
                    },
                }
            },
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": SCORE,
                    "requestBody": {
                        "description": "The input payload for executing the "
                        "real-time machine learning service.",
                        "content": json_body("ServiceInput"),
                    },
                    "responses": {
                        "200": {
                            "description": "The service processed the input correctly "
                            "and provided a result prediction, if applicable.",
                            "content": json_body("ServiceOutput"),
                        },
                        "default": error,
                    },
                }
            },
            "/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "default": error,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "Bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "For example: Bearer abc123",
                }
            },
            "schemas": {
                "ServiceInput": service_input,
                "ServiceOutput": service_output,
                "ErrorResponse": ERROR,
            },
        },
    }
