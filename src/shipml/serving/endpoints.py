"""The route table and its endpoints: each one only translates HTTP to a Service call.

Every endpoint takes a :class:`Request` and returns a :class:`Response`; errors are
raised as :class:`~shipml.errors.ShipmlError` and rendered by the app in one place.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import orjson

from shipml.errors import ModelError, NotFound
from shipml.scoring.azureml import AzureMLScorer, ScoreCall
from shipml.serving.azureml_headers import NOT_FAILED
from shipml.serving.costs import LARGE_BODY_BYTES
from shipml.serving.metrics import Metrics
from shipml.serving.oip import OpenInference
from shipml.serving.openapi import Facts, build_openapi
from shipml.serving.service import Service

JSON = b"application/json"
ENCODE_SLICE = 4096  # results per orjson call when writing a large answer
BINARY = b"application/octet-stream"
# The pages hold no inline script or style, so the policy can forbid both.
CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    body: bytes
    request_id: str
    params: dict[str, str]
    inference_header_length: bytes | None = None  # the binary tensor extension's header
    content_encoding: bytes | None = None  # how the client compressed the body, if it did
    scope: Mapping[str, Any] = field(default_factory=dict)  # the ASGI scope, as received


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # may hold {params}
    endpoint: Endpoint
    protected: bool = True  # needs an API key when keys are configured
    reads_body: bool = False
    # Azure ML's routes answer errors as Microsoft's server does: {"message": "..."}
    azureml_errors: bool = False


def json_response(value: Any, status: int = 200) -> Response:
    try:
        if isinstance(value, list) and len(value) > ENCODE_SLICE:
            # orjson holds Python's lock for a whole call: slices let the event loop in
            parts = (
                orjson.dumps(value[i : i + ENCODE_SLICE], option=orjson.OPT_SERIALIZE_NUMPY)
                for i in range(0, len(value), ENCODE_SLICE)
            )
            body = b"[" + b",".join(part[1:-1] for part in parts) + b"]"
        else:
            body = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise ModelError(f"the model's answer cannot be written as JSON: {exc}") from None
    return Response(status, body)


class Endpoints:
    def __init__(
        self,
        service: Service,
        metrics: Metrics,
        auth: bool,
        cors: Callable[[], bool] = lambda: False,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.auth = auth
        self.cors = cors  # whether CORS is on (AML_CORS_ORIGINS counts once a model is loaded)
        self.static = _load_static()
        self._openapi: bytes | None = None
        self.oip = OpenInference(service)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/predict", self.predict, reads_body=True),
            Route("POST", "/score", self.score, reads_body=True, azureml_errors=True),
            Route("GET", "/score", self.score, azureml_errors=True),
            Route("OPTIONS", "/score", self.score, azureml_errors=True),
            Route("GET", "/swagger.json", self.swagger, protected=False, azureml_errors=True),
            Route("GET", "/info", self.info),
            Route("GET", "/health/live", self.live, protected=False),
            Route("GET", "/health/ready", self.ready, protected=False),
            Route("GET", "/metrics", self.prometheus),
            Route("GET", "/openapi.json", self.openapi, protected=False),
            Route("GET", "/", self.page("index.html"), protected=False),
            Route("GET", "/docs", self.page("docs.html"), protected=False),
            Route("GET", "/static/{file}", self.asset, protected=False),
            *self.v2_routes(),
        ]

    def v2_routes(self) -> list[Route]:
        """The Open Inference Protocol; every model route also under ``/versions/{version}``."""
        routes = [
            Route("GET", "/v2", self.v2_server),
            Route("GET", "/v2/health/live", self.v2_live, protected=False),
            Route("GET", "/v2/health/ready", self.v2_ready, protected=False),
        ]
        for model in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            routes += [
                Route("GET", model, self.v2_metadata),
                Route("GET", f"{model}/ready", self.v2_model_ready, protected=False),
                Route("GET", f"{model}/config", self.v2_config),
                Route("POST", f"{model}/infer", self.v2_infer, reads_body=True),
            ]
        return routes

    async def predict(self, request: Request) -> Response:
        if isinstance(self.service.scorer, AzureMLScorer):  # run() decides what it takes
            return await self.score(request)
        result = await self.service.predict(request.body, request.request_id)
        if len(request.body) > LARGE_BODY_BYTES:
            answer: Response = await self.service.off_loop(json_response, result)
            return answer
        return json_response(result)

    async def score(self, request: Request) -> Response:
        """``/score`` (and ``/predict`` of a score.py model): as Microsoft's server answers."""
        scope = request.scope
        call = ScoreCall(
            request.method,
            request.path,
            scope.get("query_string", b""),
            list(scope.get("headers", ())),
            request.body,
            scope.get("scheme", "http"),
            tuple(scope.get("server") or ("127.0.0.1", 80)),
            tuple(scope.get("client") or ("127.0.0.1", 0)),
        )
        answer = await self.service.score(call, request.request_id)
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers
        ]
        return Response(answer.status, answer.body, answer.content_type.encode("latin-1"), headers)

    async def swagger(self, request: Request) -> Response:
        """``/swagger.json[?version=2|3|3.1]``, from the script's inference_schema decorators."""
        scorer = self.service.score_script()
        info = self.service.info()
        query = dict(  # ?version= is a version, an empty one (as for Microsoft's server)
            parse_qsl(
                request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            )
        )
        document = scorer.swagger(query.get("version"), info["name"], str(info["version"]))
        # Microsoft's AMLResponse: the header is on every answer of its own
        return Response(200, json.dumps(document).encode(), headers=[NOT_FAILED])

    async def info(self, request: Request) -> Response:
        return json_response(self.service.info())

    async def live(self, request: Request) -> Response:
        return json_response({"status": "alive"})

    async def ready(self, request: Request) -> Response:
        self.service.info()  # raises NotReady (503) until loaded and warmed
        return json_response({"status": "ready", "model": self.service.info()["ref"]})

    async def prometheus(self, request: Request) -> Response:
        return Response(200, self.metrics.render(), self.metrics.content_type.encode())

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            loaded = self.service.current()  # NotReady (503) until loaded
            scorer = loaded.scorer
            facts = Facts(
                loaded.info,
                loaded.example_output,
                self.auth,
                loaded.closed,
                sorted(self.static),
                cors=self.cors(),
            )
            if isinstance(scorer, AzureMLScorer):
                facts.swagger_versions = scorer.swagger_versions()
                facts.raw_script = scorer.raw
            document = build_openapi(facts)
            self._openapi = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(200, self._openapi)

    def page(self, name: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return self._file(name)

        return endpoint

    async def asset(self, request: Request) -> Response:
        return self._file(request.params["file"])

    def _file(self, name: str) -> Response:
        if name not in self.static:
            raise NotFound(f"no such file: {name}")
        body, content_type = self.static[name]
        return Response(200, body, content_type, PAGE_HEADERS)

    async def v2_server(self, request: Request) -> Response:
        return json_response(self.oip.server_metadata())

    async def v2_live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        self.service.info()  # raises NotReady (503) until loaded and warmed
        return json_response({"ready": True})

    async def v2_metadata(self, request: Request) -> Response:
        params = request.params
        return json_response(self.oip.model_metadata(params["name"], params.get("version")))

    async def v2_model_ready(self, request: Request) -> Response:
        params = request.params
        return json_response(self.oip.model_ready(params["name"], params.get("version")))

    async def v2_config(self, request: Request) -> Response:
        params = request.params
        return json_response(self.oip.model_config(params["name"], params.get("version")))

    async def v2_infer(self, request: Request) -> Response:
        params = request.params
        body, header_length = await self.oip.infer(
            params["name"],
            params.get("version"),
            request.body,
            request.inference_header_length,
            request.request_id,
        )
        if header_length is None:
            return Response(200, body)
        return Response(
            200, body, BINARY, [(b"inference-header-content-length", str(header_length).encode())]
        )


def _load_static() -> dict[str, tuple[bytes, bytes]]:
    """The web assets, read once: they are small and served from memory."""
    folder = resources.files("shipml.serving") / "static"
    files: dict[str, tuple[bytes, bytes]] = {}
    if not folder.is_dir():
        return files
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files
