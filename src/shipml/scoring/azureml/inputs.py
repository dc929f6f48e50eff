"""How a request becomes the arguments of ``run()``, exactly as Microsoft's server decides.

``azureml-inference-server-http`` inspects ``run()`` once, at load, and picks one of
three ways to call it:

- ``@rawhttp``: the first parameter gets the request object itself (any method);
- ``@input_schema`` (inference_schema): the body must be a JSON object and each of
  ``run()``'s parameters is taken from it by name (defaults honoured); ``GET /score``
  takes them from the query string, each value read as JSON when it parses;
- otherwise the first parameter gets the body decoded as UTF-8 text (``GET``: the query
  parameters as a JSON object's text).

``request_headers``, when ``run()`` declares it, gets the request's headers as a dict,
named and joined the way a WSGI server presents them (``Content-Type``, ``X-Api-Key``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from shipml.errors import InvalidInput, InvalidJSON, ProjectError, ShipmlError
from shipml.scoring.azureml.call import ScoreCall

REQUEST_HEADERS = "request_headers"


class UnsupportedMediaType(ShipmlError):
    status = 415
    code = "unsupported_media_type"


class UnsupportedMethod(ShipmlError):
    status = 405
    code = "method_not_allowed"


Parser = Callable[[ScoreCall], dict[str, Any]]


@dataclass(frozen=True)
class RunSignature:
    """What load-time inspection of ``run()`` decided."""

    parser: Parser
    kind: str  # "raw", "object" or "string"
    parameters: tuple[str, ...]
    takes_headers: bool


def analyse_run(run: Callable[..., Any], raw_http: bool, decorated: bool) -> RunSignature:
    """Inspect ``run()`` as Microsoft's server does; refuse what it refuses, with its words."""
    params = list(inspect.signature(run).parameters.values())
    allowed = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(param.kind not in allowed for param in params):
        raise ProjectError("run() cannot accept positional-only arguments, *args, or **kwargs.")
    takes_headers = any(param.name == REQUEST_HEADERS for param in params)
    params = [param for param in params if param.name != REQUEST_HEADERS]
    if not params:
        if takes_headers:
            raise ProjectError('run() needs to accept an argument other than "request_headers".')
        raise ProjectError("run() needs to accept an argument for input data.")
    names = tuple(param.name for param in params)
    if raw_http and decorated:
        raise ProjectError("run() cannot be decorated with both @rawhttp and @input_schema")
    if raw_http:
        return RunSignature(RawRequestInput(names[0]), "raw", names, takes_headers)
    if decorated:
        return RunSignature(ObjectInput(params), "object", names, takes_headers)
    return RunSignature(JsonStringInput(names[0]), "string", names, takes_headers)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def query_parameters(call: ScoreCall) -> dict[str, Any]:
    """``?a=1&b=[1,2]&c=x&c=y`` → ``{"a": 1, "b": [1, 2], "c": ["x", "y"]}``."""
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(call.query.decode("latin-1"), keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    return {
        key: _json_or_text(values[0]) if len(values) == 1 else [_json_or_text(v) for v in values]
        for key, values in grouped.items()
    }


class JsonStringInput:
    """Undecorated ``run(data)``: the body as text, as Azure ML has always passed it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, call: ScoreCall) -> dict[str, Any]:
        if call.method == "GET":
            return {self.name: json.dumps(query_parameters(call))}
        if call.method != "POST":
            raise UnsupportedMethod(f"Unsupported HTTP method: {call.method}")
        try:
            return {self.name: call.body.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"Input cannot be decoded as UTF-8: {exc}") from None


class ObjectInput:
    """``@input_schema``-decorated ``run``: parameters by name from a JSON object."""

    def __init__(self, parameters: list[inspect.Parameter]) -> None:
        self.parameters = parameters

    def __call__(self, call: ScoreCall) -> dict[str, Any]:
        if call.method == "GET":
            return self.extract(query_parameters(call))
        if call.method != "POST":
            raise UnsupportedMethod(f"Unsupported HTTP method: {call.method}")
        mimetype = call.content_type().split(";", 1)[0].strip().lower()
        if not (
            mimetype == "application/json"
            or (mimetype.startswith("application/") and mimetype.endswith("+json"))
        ):
            raise UnsupportedMediaType("Expects Content-Type to be application/json")
        return self.from_body(call.body)

    def from_body(self, body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body)
        except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bad bytes
            if body:
                raise InvalidJSON(f"POST body could not be decoded as JSON: {exc}") from None
            raise InvalidJSON("POST body is empty. Expecting a JSON dictionary.") from None
        if not isinstance(payload, dict):
            raise InvalidInput("POST body should be a JSON dictionary.")
        return self.extract(payload)

    def extract(self, body: dict[str, Any]) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        for parameter in self.parameters:
            value = body.get(parameter.name, parameter.default)
            if value is inspect.Parameter.empty:
                raise InvalidInput(f"A value is not provided for the {parameter.name!r} parameter.")
            arguments[parameter.name] = value
        return arguments


class RawRequestInput:
    """``@rawhttp`` ``run(request)``: the request object, whatever the method."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, call: ScoreCall) -> dict[str, Any]:
        # Imported on use: werkzeug is needed by @rawhttp scripts only.
        from shipml.scoring.azureml.raw import request_object

        return {self.name: request_object(call)}
