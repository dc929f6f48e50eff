"""The ASGI application: routing, body limits, auth, errors, request ids, metrics.

A plain ASGI callable over the declarative route table in :mod:`shipml.serving.endpoints`.
It is hand-written rather than built on a framework because per-request overhead is
what decides throughput on small models (see docs/architecture.md): the whole path
from socket to model is a dict lookup, a header scan and one ``orjson`` call each way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from shipml.errors import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    OriginNotAllowed,
    PayloadTooLarge,
    ShipmlError,
)
from shipml.scoring.azureml import AzureMLScorer
from shipml.serving.auth import ApiKeys
from shipml.serving.azureml_headers import run_failed, tracing
from shipml.serving.cors import Cors, parse_origins
from shipml.serving.costs import LARGE_BODY_BYTES
from shipml.serving.encoding import ACCEPTED, UnsupportedEncoding, decoded
from shipml.serving.endpoints import Endpoints, Request, Response, Route
from shipml.serving.metrics import Metrics
from shipml.serving.oip import error_body as oip_error_body
from shipml.serving.service import Service
from shipml.serving.settings import ServeSettings
from shipml.store import LocalModel

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("shipml")
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


class App:
    """Route requests to endpoints; everything HTTP-specific happens here and only here."""

    def __init__(self, service: Service, settings: ServeSettings, metrics: Metrics) -> None:
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.keys = ApiKeys(settings.api_keys)
        self.cors = Cors(settings.cors_origins) if settings.cors_origins else None
        # Microsoft's variable, for score.py models only: known once the model is loaded
        self._aml_origins = parse_origins(
            os.environ.get("AML_CORS_ORIGINS", ""), "AML_CORS_ORIGINS"
        )
        self.endpoints = Endpoints(
            service, metrics, auth=self.keys.enabled, cors=lambda: self.cors is not None
        )
        self._id_prefix, self._id_counter = os.urandom(5).hex(), itertools.count()
        # paths whose errors, a 405 included, are answered as Microsoft's server does
        self._azureml_paths = {r.path for r in self.endpoints.routes() if r.azureml_errors}
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        for route in self.endpoints.routes():
            if "{" in route.path:
                regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path) + "$")
                for pattern, methods in self._patterns:
                    if pattern.pattern == regex.pattern:
                        methods[route.method] = route
                        break
                else:
                    self._patterns.append((regex, {route.method: route}))
            else:
                self._exact.setdefault(route.path, {})[route.method] = route

    def _new_id(self) -> str:
        """A request id unique across workers and restarts: a random prefix drawn when
        the app is built (in each worker, after the fork), then a counter; no system
        call per request, unlike ``os.urandom``."""
        return f"{self._id_prefix}{next(self._id_counter):06x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.service.start()
                self.metrics.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.stop()
                self.metrics.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _routes_at(self, path: str) -> tuple[dict[str, Route], dict[str, str]]:
        methods = self._exact.get(path)
        if methods is not None:
            return methods, {}
        for pattern, candidates in self._patterns:
            found = pattern.match(path)
            if found:
                return candidates, found.groupdict()
        raise NotFound(f"no route {path}; see /docs for the routes of this service")

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        methods, params = self._routes_at(path)
        route = methods.get(method)
        if route is None and method == "HEAD":
            # RFC 9110 §9.3.2: HEAD is GET without the body (the server drops it), and every
            # general-purpose server must answer it; uptime monitors and `curl -I` send it.
            # The request keeps its method: a @rawhttp score.py sees HEAD, as under Flask.
            route = methods.get("GET")
        if route is None:
            allowed = tuple(methods)
            if "GET" in allowed:
                allowed = (*allowed, "HEAD")
            if self.cors is not None and "OPTIONS" not in allowed:  # preflights
                allowed = (*allowed, "OPTIONS")
            raise MethodNotAllowed(method, path, allowed)
        return route, params

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        request_id = content_length = authorization = api_key = inference_header = None
        origin = encoding = None  # a browser page's (CORS); a compressed body's coding
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value
            elif name == b"x-request-id" and SAFE_REQUEST_ID.match(value):
                request_id = value.decode()
            elif name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"inference-header-content-length":  # /v2 binary tensors
                inference_header = value
            elif name == b"origin":
                origin = value
            elif name == b"content-encoding":
                encoding = value
        request_id = request_id or self._new_id()
        label, metrics = "unmatched", self.metrics
        metrics.in_flight_now += 1
        azureml = path in self._azureml_paths
        cors = self.cors if not self._aml_origins else self._cors_of_model()
        preflight = None
        traced: list[tuple[bytes, bytes]] = []  # Microsoft's request ids, on its routes
        try:  # the gauge comes down whatever happens, a client gone mid-send included
            try:
                if azureml:
                    traced = tracing(scope["headers"], request_id)
                preflight = (
                    self._preflight(scope, path, origin, cors)
                    if method == "OPTIONS" and cors is not None and origin is not None
                    else None
                )
                if preflight is not None:
                    label, response = "preflight", preflight
                else:
                    route, params = self._match(method, path)
                    label, azureml = route.path, route.azureml_errors
                    if route.protected and self.keys.enabled:
                        self.keys.check(authorization, api_key)
                    request = Request(
                        method,
                        path,
                        b"",
                        request_id,
                        params,
                        inference_header_length=inference_header,
                        content_encoding=encoding,
                        scope=scope,
                    )
                    response = await self._call(route, request, receive, content_length)
            except ClientGone:
                return
            except Exception as exc:
                response = self._failed(exc, (request_id, method, path), azureml)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": self._headers(
                        response, request_id, traced, cors if preflight is None else None, origin
                    ),
                }
            )
            await send({"type": "http.response.body", "body": response.body})
        finally:
            metrics.in_flight_now -= 1
        metrics.answered(label, method, response.status, time.perf_counter() - started)

    def _failed(self, exc: Exception, where: tuple[str, str, str], azureml: bool) -> Response:
        """The error answer for ``exc``: its own, or one line in the log and a 4xx/500."""
        request_id, _, path = where
        if isinstance(exc, ShipmlError):
            return self._error(exc, request_id, path, azureml)
        if isinstance(exc, RecursionError):  # a body nested deeper than any check walks
            log.warning("request %s %s %s: refused a body nested too deeply", *where)
            nested = InvalidInput("the body is nested too deeply; send flat records or rows")
            return self._error(nested, request_id, path, azureml)
        log.error("request %s %s %s failed:\n%s", *where, _brief_traceback(exc))
        failure = ShipmlError("internal error; see the service log")
        return self._error(failure, request_id, path, azureml)

    def _headers(
        self,
        response: Response,
        request_id: str,
        traced: list[tuple[bytes, bytes]],
        cors: Cors | None,
        origin: bytes | None,
    ) -> list[tuple[bytes, bytes]]:
        """The answer's headers: its own, the request id, Microsoft's ids on its routes
        (``traced``; not on a 405, which Microsoft answers before it reads them), CORS."""
        headers = [
            (b"content-length", str(len(response.body)).encode()),
            (b"x-request-id", request_id.encode()),
            *response.headers,
        ]
        if response.content_type:  # a score.py's own response may have none
            headers.insert(0, (b"content-type", response.content_type))
        if not self.service.ready:
            # a worker still loading answers only while no other worker is ready
            # (serving/listeners.py); the client's next request may find one
            headers.append((b"connection", b"close"))
        if traced and response.status != 405:
            headers.extend(traced)
        if cors is not None:
            headers.extend(cors.answer_headers(origin))
        return headers

    def _cors_of_model(self) -> Cors | None:
        """Settings' origins, plus ``AML_CORS_ORIGINS`` once a score.py model is loaded."""
        if not self.service.ready:
            return self.cors
        if isinstance(self.service.scorer, AzureMLScorer):
            self.cors = Cors((*self.settings.cors_origins, *self._aml_origins))
        self._aml_origins = ()
        return self.cors

    def _preflight(self, scope: Scope, path: str, origin: bytes, cors: Cors) -> Response | None:
        """A browser's ``OPTIONS`` preflight, answered for every route (None: not one).

        An ``OPTIONS`` request without ``Access-Control-Request-Method`` is not a
        preflight: it is routed as usual (a score.py's ``/score`` answers it itself, as
        under Microsoft's server)."""
        wanted = requested = None
        for name, value in scope["headers"]:
            if name == b"access-control-request-method":
                wanted = value
            elif name == b"access-control-request-headers":
                requested = value
        if wanted is None:
            return None
        try:
            methods = tuple(m for m in self._routes_at(path)[0] if m != "OPTIONS")
        except NotFound:  # the request itself will be told
            methods = ("GET", "POST")
        headers = cors.preflight(origin, requested, methods)
        if headers is None:
            raise OriginNotAllowed(origin.decode("latin-1"))
        return Response(204, b"", b"", headers)

    async def _call(
        self, route: Route, request: Request, receive: Receive, content_length: bytes | None
    ) -> Response:
        if not route.reads_body:
            return await route.endpoint(request)
        body = await self._read_body(receive, content_length)
        coding = request.content_encoding
        if coding is not None and not route.azureml_errors:  # Microsoft's: as it came
            body = await self._decoded(body, coding)
        request.body = body
        if self.service.inline:
            return await route.endpoint(request)
        return await self._unless_gone(route, request, receive)

    async def _decoded(self, body: bytes, coding: bytes) -> bytes:
        """A compressed body, decoded on the event loop while it stays small, and on the
        large-request thread once it decodes past ``LARGE_BODY_BYTES`` (serving/costs.py):
        a few KiB can decode into the whole body limit."""
        limit = self.settings.max_body_bytes
        try:
            return decoded(body, coding, min(limit, LARGE_BODY_BYTES))
        except PayloadTooLarge:
            if limit <= LARGE_BODY_BYTES:
                raise
        answer: bytes = await self.service.off_loop(decoded, body, coding, limit)
        return answer

    @staticmethod
    async def _unless_gone(route: Route, request: Request, receive: Receive) -> Response:
        """Run a slow endpoint, abandoning it if the client disconnects meanwhile.

        Slow models queue requests for many milliseconds; a client that timed out (and
        perhaps retried) should not cost a model call. Once the body is read, the next
        ``receive()`` returns only at disconnect, so one watcher per request cancels the
        endpoint, and the batcher drops its cancelled job before the call. Fast models
        skip this: their queue drains within a model call, and the watcher costs more.
        """
        task = asyncio.current_task()
        if task is None:  # never under an ASGI server (each request runs in a task)
            return await route.endpoint(request)
        state = {"finished": False, "gone": False}  # this request's own; nothing shared

        def on_message(watch: asyncio.Future[Message]) -> None:
            if state["finished"] or watch.cancelled() or watch.exception() is not None:
                return
            if watch.result()["type"] == "http.disconnect":
                state["gone"] = True
                task.cancel()

        watch = asyncio.ensure_future(receive())
        watch.add_done_callback(on_message)
        try:
            return await route.endpoint(request)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()
            raise ClientGone from None
        finally:
            state["finished"] = True
            watch.cancel()

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes:
        limit = self.settings.max_body_bytes
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise PayloadTooLarge(limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise PayloadTooLarge(limit)
            return body
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _error(exc: ShipmlError, request_id: str, path: str, azureml: bool = False) -> Response:
        """shipml's error body; on the Open Inference Protocol's routes its own
        ``{"error": "..."}``, which its clients print; on Azure ML's routes, Microsoft's
        ``{"message": ...}``."""
        status = exc.status
        headers: list[tuple[bytes, bytes]] = []
        if azureml:
            body = orjson.dumps({"message": exc.message})
            headers.append(run_failed(exc))
        elif path.startswith("/v2") and (len(path) == 3 or path[3] == "/"):
            status, body = oip_error_body(exc)
        else:
            error: dict[str, Any] = {
                "code": exc.code,
                "message": exc.message,
                "request_id": request_id,
            }
            error.update(getattr(exc, "detail", None) or {})  # a load failure's traceback
            body = orjson.dumps({"error": error})
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        if isinstance(exc, MethodNotAllowed):
            headers.append((b"allow", ", ".join(exc.allowed).encode()))
        if isinstance(exc, UnsupportedEncoding):
            headers.append((b"accept-encoding", ACCEPTED))
        if exc.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="shipml"'))
        return Response(status, body, headers=headers)


def _brief_traceback(exc: BaseException) -> str:
    """The innermost frames of an unexpected error, each line cut short: enough to find
    the bug, never the request's data many times over."""
    lines = traceback.format_exception(exc, limit=-12)
    return "".join(line if len(line) <= 500 else line[:497] + "...\n" for line in lines)


def create_app(
    settings: ServeSettings, source: Callable[[], LocalModel], description: str = "the model"
) -> App:
    """The ASGI app serving the model that ``source`` fetches."""
    metrics = Metrics()
    return App(Service(source, metrics, description, settings), settings, metrics)
