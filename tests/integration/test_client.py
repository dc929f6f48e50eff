"""shipml.client against real `shipml serve` processes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipml.client import AsyncClient, Client, ServiceError
from tests.conftest import REPO, SEED_IRIS_RECORD, Server, free_port, run_shipml

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A real socket that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_predict_info_ready_and_errors(iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model, env={"SHIPML_API_KEYS": "k1"})
    with Client(server.url, api_key="k1") as client:
        assert client.ready()
        assert client.predict(SEED_IRIS_RECORD)["label"] == "virginica"
        assert len(client.predict([SEED_IRIS_RECORD] * 3)) == 3
        assert client.info()["name"] == "iris"
        with pytest.raises(ServiceError) as caught:
            client.predict({"sepal_length": 1.0})
        assert caught.value.status == 422 and caught.value.code == "invalid_input"
        assert caught.value.request_id and "sepal_width" in caught.value.message
    with Client(server.url, api_key="wrong") as client, pytest.raises(ServiceError) as caught:
        client.info()
    assert caught.value.status == 401 and caught.value.code == "unauthorized"

    async def use_async() -> object:
        async with AsyncClient(server.url, api_key="k1") as client:
            assert await client.ready()
            return await client.predict(SEED_IRIS_RECORD)

    assert asyncio.run(use_async())["label"] == "virginica"  # type: ignore[index]


def test_retries_a_loading_service(serve: Callable[..., Server], tmp_path: Path) -> None:
    project = tmp_path / "echo"
    shutil.copytree(REPO / "tests" / "fixtures" / "echo", project)
    run_shipml("train", cwd=project, env={"ECHO_SETUP_DELAY": "3"})
    server = serve("echo@latest", wait=False)
    with Client(server.url, retries=12, retry_delay=0.5) as client:
        started = time.monotonic()
        assert client.predict({"text": "hi"}) == {"length": 2, "text": "hi"}
        assert time.monotonic() - started > 1  # it really waited for the model
    with Client(server.url, retries=0) as client:
        assert client.predict({"text": "ok"})["length"] == 2


def test_timeout_and_connection_failures(silent_socket: str) -> None:
    with Client(silent_socket, timeout=0.5, retries=3) as client:
        started = time.monotonic()
        with pytest.raises(ServiceError) as caught:
            client.predict({"x": 1})
        assert caught.value.code == "timeout" and time.monotonic() - started < 2  # not retried
    nobody = f"http://127.0.0.1:{free_port()}"
    with Client(nobody, retries=2, retry_delay=0.05) as client:
        assert not client.ready()
        with pytest.raises(ServiceError) as caught:
            client.info()
        assert caught.value.code == "connection_failed" and caught.value.status == 0
