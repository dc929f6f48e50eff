"""Call a shipml service from Python: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

    from shipml.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        client.predict({"text": "I love this"})      # {"score": 0.99, "label": "positive"}
        client.predict([{"text": "a"}, {"text": "b"}])  # a list for a list

Errors from the service raise :class:`ServiceError` carrying status, code, message and
request id. Requests are retried, with backoff, only when retrying is safe and useful:
on 503 (loading or overloaded; ``Retry-After`` is honoured) and when no connection could
be made. A timeout is not retried: the model may already have run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

MAX_DELAY = 5.0


class ServiceError(Exception):
    """The service answered with an error (or could not be reached: ``status`` 0)."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(
            f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else "")
        )
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


def _error(response: httpx.Response) -> ServiceError:
    try:
        detail = response.json()["error"]
        return ServiceError(
            response.status_code,
            detail["code"],
            detail["message"],
            detail.get("request_id") or response.headers.get("x-request-id"),
        )
    except (ValueError, KeyError, TypeError):
        return ServiceError(
            response.status_code,
            "http_error",
            response.text[:200],
            response.headers.get("x-request-id"),
        )


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise _error(response)
    return response.json()


class _Retry:
    """The retry policy both clients share: what to retry, and how long to wait."""

    def __init__(self, retries: int, delay: float) -> None:
        self.retries, self.delay = retries, delay

    def wait(
        self, attempt: int, response: httpx.Response | None, error: Exception | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        if attempt >= self.retries:
            return None
        if error is not None:  # no connection was made: safe to try again
            return min(self.delay * 2.0**attempt, MAX_DELAY)
        if response is not None and response.status_code == 503:
            after = response.headers.get("retry-after", "")
            return min(float(after) if after.isdigit() else self.delay * 2.0**attempt, MAX_DELAY)
        return None

    @staticmethod
    def finish(response: httpx.Response | None, error: Exception | None) -> httpx.Response:
        if response is None:
            raise ServiceError(0, "connection_failed", str(error), None) from error
        return response


def _timeout(exc: httpx.TimeoutException) -> ServiceError:
    return ServiceError(0, "timeout", f"no answer within the timeout: {exc}", None)


def _settings(url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"base_url": url.rstrip("/"), "timeout": timeout, "headers": headers}


class Client:
    """A blocking client for one service. Use it as a context manager or call ``close()``."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        retry_delay: float = 0.2,
    ) -> None:
        self._retry = _Retry(retries, retry_delay)
        self._http = httpx.Client(**_settings(url, api_key, timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        attempt = 0
        while True:
            response, error = None, None
            try:
                response = self._http.request(method, path, json=body)
            except httpx.ConnectError as exc:
                error = exc
            except httpx.TimeoutException as exc:
                raise _timeout(exc) from exc
            wait = self._retry.wait(attempt, response, error)
            if wait is None:
                return self._retry.finish(response, error)
            time.sleep(wait)
            attempt += 1

    def predict(self, data: Any) -> Any:
        """Predict for one record (one result) or a list of records (a list of results)."""
        return _json(self._request("POST", "/predict", data))

    def info(self) -> dict[str, Any]:
        """The model card: name, version, digest, schema, metrics."""
        return dict(_json(self._request("GET", "/info")))

    def ready(self) -> bool:
        """True once the model is loaded and warmed; False while loading or unreachable."""
        try:
            return self._http.get("/health/ready").status_code == 200
        except httpx.TransportError:
            return False


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods, as coroutines."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        retry_delay: float = 0.2,
    ) -> None:
        self._retry = _Retry(retries, retry_delay)
        self._http = httpx.AsyncClient(**_settings(url, api_key, timeout))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        attempt = 0
        while True:
            response, error = None, None
            try:
                response = await self._http.request(method, path, json=body)
            except httpx.ConnectError as exc:
                error = exc
            except httpx.TimeoutException as exc:
                raise _timeout(exc) from exc
            wait = self._retry.wait(attempt, response, error)
            if wait is None:
                return self._retry.finish(response, error)
            await asyncio.sleep(wait)
            attempt += 1

    async def predict(self, data: Any) -> Any:
        return _json(await self._request("POST", "/predict", data))

    async def info(self) -> dict[str, Any]:
        return dict(_json(await self._request("GET", "/info")))

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/health/ready")).status_code == 200
        except httpx.TransportError:
            return False
