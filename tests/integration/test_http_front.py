"""The HTTP front under the attacks of issue 14, on 127.0.0.1: header floods, slow clients,
more connections than descriptors. Every loop is bounded; each test asserts the outcome."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import IRIS_FEATURES, SEED_IRIS_RECORD, Server, launch, stop_all

pytestmark = pytest.mark.slow

HEAD = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An iris model in a store of this module's own (the servers are shared by its tests)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import shipml

    folder = tmp_path_factory.mktemp("front")
    env = {"SHIPML_STORE": str(folder / "store"), "SHIPML_CACHE": str(folder / "cache")}
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        shipml.save_model(model, training_data=data.data, feature_names=IRIS_FEATURES, name="iris")
    return env


@pytest.fixture(scope="module")
def servers(
    store: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """Two servers started together: short timeouts; and a descriptor limit of 1,024."""
    folder = tmp_path_factory.mktemp("front-servers")
    started = {
        "short": launch(
            ("iris@latest",),
            folder,
            # one worker (the default is one per CPU): the RSS test watches that worker
            {
                **store,
                "SHIPML_HEADER_TIMEOUT": "2",
                "SHIPML_BODY_TIMEOUT": "2",
                "SHIPML_WORKERS": "1",
            },
        ),
        # one worker: the test fills that worker's descriptor limit
        "few_descriptors": launch(
            ("iris@latest",), folder, {**store, "SHIPML_WORKERS": "1"}, nofile=1024
        ),
    }
    try:
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        stop_all(started.values())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def answer_of(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one response (the server closes the connection after it)."""
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def refused_json(body: bytes, code: str) -> str:
    error = orjson.loads(body)["error"]
    assert error["code"] == code and error["request_id"]
    return str(error["message"])


def connect(server: Server, timeout: float = 30) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock


def test_unterminated_100_mb_headers_do_not_grow_the_worker(servers: dict[str, Server]) -> None:
    server = servers["short"]
    [worker] = server.workers()
    before = rss_kib(worker)
    chunk = b"a" * (1 << 20)
    for _ in range(4):  # four headers of 100 MB that never end, one after the other
        with connect(server) as sock:
            sock.sendall(HEAD + b"X-Flood: ")
            with contextlib.suppress(OSError):  # the server may close before we are done
                for _ in range(100):
                    sock.sendall(chunk)
            status, headers, body = answer_of(sock)
        assert status == 431 and headers["connection"] == "close"
        assert "16384 bytes" in refused_json(body, "headers_too_large")
    grown = rss_kib(worker) - before
    assert grown < 4096, f"the worker grew by {grown} KiB"
    assert httpx.post(f"{server.url}/predict", json=SEED_IRIS_RECORD).status_code == 200


def test_a_10_mb_header_and_too_many_fields_get_431(servers: dict[str, Server]) -> None:
    server = servers["short"]
    with connect(server) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(HEAD + b"X-Big: " + b"b" * 10_000_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        status, _, body = answer_of(sock)
    assert status == 431 and "SHIPML_MAX_HEADER_BYTES" in refused_json(body, "headers_too_large")
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(101))
    with connect(server) as sock:
        sock.sendall(HEAD + many + b"Content-Length: 2\r\n\r\n{}")
        status, _, body = answer_of(sock)
    assert status == 431 and "more than 100 header fields" in refused_json(
        body, "headers_too_large"
    )
    # within the limits a request with large headers is served
    headers = {f"X-{i}": "v" * 100 for i in range(90)}
    assert httpx.get(f"{server.url}/health/live", headers=headers).status_code == 200


def test_slow_headers_and_slow_bodies_get_408(servers: dict[str, Server]) -> None:
    server = servers["short"]  # header and body timeouts of 2 s
    with connect(server) as head, connect(server) as body:
        head.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        body.sendall(HEAD + b"Content-Length: 100\r\n\r\n{")
        started = time.monotonic()
        for sock, expected in ((head, "headers did not arrive within 2 s"), (body, "body")):
            status, headers, answer = answer_of(sock)
            assert status == 408 and headers["connection"] == "close"
            assert expected in refused_json(answer, "request_timeout")
        assert 1.5 < time.monotonic() - started < 10


def test_garbage_is_a_400_with_a_json_body(servers: dict[str, Server]) -> None:
    with connect(servers["short"]) as sock:
        sock.sendall(b"HELLO THERE\r\n\r\n")
        status, _, body = answer_of(sock)
    assert status == 400 and "not a valid HTTP/1.1 request" in refused_json(body, "bad_request")


def test_refusals_are_counted_and_logged_once_a_minute(servers: dict[str, Server]) -> None:
    server = servers["short"]
    for _ in range(5):
        with connect(server) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(HEAD + b"X-Big: " + b"c" * 100_000)
            assert answer_of(sock)[0] == 431
    counted = server.metric('shipml_http_refused_total{reason="header_too_large"}')
    assert counted >= 5
    log = server.log.read_text()
    assert log.count("refused a connection from 127.0.0.1 (431: request line") == 1


def test_1100_slow_connections_at_a_1024_descriptor_limit(servers: dict[str, Server]) -> None:
    server = servers["few_descriptors"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    slow: list[socket.socket] = []
    try:
        for _ in range(1100):  # each sends a header that never ends, slowly
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Slow: a")
            slow.append(sock)
        started = time.monotonic()
        for _ in range(20):  # others are still served, each on a new connection
            with httpx.Client(base_url=server.url, timeout=5) as client:
                assert client.get("/health/live").status_code == 200
                assert client.post("/predict", json=SEED_IRIS_RECORD).status_code == 200
        assert time.monotonic() - started < 8  # before the flood's headers time out (10 s)
    finally:
        for sock in slow:
            sock.close()
    assert server.metric('shipml_http_refused_total{reason="evicted"}') > 0
    assert "out of file descriptors" not in server.log.read_text()
