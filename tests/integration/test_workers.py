"""Workers from start to shutdown (issue 14): no request reaches a worker that is not ready,
a killed worker leaves no connection refused, SIGTERM drains what was accepted, a large
request does not hold the event loop, and a port the service cannot have is one clear line."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SEED_IRIS_RECORD, SHIPML, Server, run_shipml

pytestmark = pytest.mark.slow


@pytest.fixture
def echo(tmp_path: Path) -> str:
    project = tmp_path / "echo"
    shutil.copytree(REPO / "tests" / "fixtures" / "echo", project)
    run_shipml("train", cwd=project)
    return "echo@latest"


def raw_post(port: int, body: bytes) -> str:
    """One POST /predict on a new connection; its status line, or the error's name."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            answer = sock.recv(4096)
            return answer.split(b"\r\n", 1)[0].decode() if answer else "closed"
    except OSError as exc:
        return type(exc).__name__


def test_no_request_reaches_a_worker_that_is_not_ready(
    echo: str, serve: Callable[..., Server], tmp_path: Path
) -> None:
    stagger = tmp_path / "stagger"
    stagger.mkdir()
    # the second worker to set up takes 4 s longer than the first
    env = {"ECHO_STAGGER_DIR": str(stagger), "ECHO_STAGGER": "4"}
    server = serve(echo, "--workers", "2", env=env)  # returns once one worker answers ready
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + 3
    with httpx.Client(base_url=server.url, timeout=10) as keep_alive:
        while time.monotonic() < deadline:  # meanwhile the other worker is still loading
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                statuses[fresh.post("/predict", json={"text": "hi"}).status_code] += 1
            statuses[keep_alive.post("/predict", json={"text": "hi"}).status_code] += 1
            statuses[keep_alive.get("/health/ready").status_code] += 1
    assert len(list(stagger.iterdir())) == 2  # both workers were setting up
    assert set(statuses) == {200}, statuses
    assert statuses[200] > 30
    log = server.log.read_text()
    assert log.count("ready and listening") == 1  # the test ran while one was not ready


@pytest.mark.parametrize("workers", [1, 2])
def test_no_connection_is_refused_while_a_worker_is_killed(
    workers: int, iris_model: str, serve: Callable[..., Server]
) -> None:
    server = serve(iris_model, "--workers", str(workers))
    body = httpx.Request("POST", "/", json=SEED_IRIS_RECORD).read()
    results: Counter[str] = Counter()
    stop = time.monotonic() + 4

    def loop() -> None:
        while time.monotonic() < stop:
            results[raw_post(server.port, body)] += 1

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    victim = server.workers()[0]
    os.kill(victim, signal.SIGKILL)
    for thread in threads:
        thread.join()
    assert results["ConnectionRefusedError"] == 0, results
    assert results["HTTP/1.1 200 OK"] > 50
    # only requests the killed worker had taken can be lost: those it was answering, and
    # a connection the kernel queued on its socket in the instant before it was gone
    lost = sum(n for status, n in results.items() if not status.startswith("HTTP/1.1"))
    assert lost <= 2 * len(threads), results
    if workers == 2:  # the other worker answered throughout
        assert set(results) - {"HTTP/1.1 200 OK"} <= {"ConnectionResetError", "closed"}
    else:  # the master held the connections; the new worker said why it was not ready
        assert set(results) - {"HTTP/1.1 200 OK", "HTTP/1.1 503 Service Unavailable"} <= {
            "ConnectionResetError",
            "closed",
        }
    deadline = time.monotonic() + 60
    while len(server.workers()) < workers or victim in server.workers():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_sigterm_drains_requests_queued_behind_a_busy_worker(
    echo: str, serve: Callable[..., Server]
) -> None:
    server = serve(echo, "--workers", "1")  # one busy worker (the default: one per CPU)
    body = b'{"text": "sleep:0.2"}'
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(raw_post(server.port, body)))
        for _ in range(24)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # 24 requests of 0.2 s each: most are still queued
    os.killpg(server.process.pid, signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert results == ["HTTP/1.1 200 OK"] * 24
    assert server.process.wait(timeout=30) == 0
    log = server.log.read_text()
    answered = int(log.split(" request", 1)[0].rsplit("answered ", 1)[1])
    assert answered >= 18, log[-2000:]
    assert "connections taken from the listen queue" in log


def test_big_requests_leave_health_live_fast(iris_model: str, serve: Callable[..., Server]) -> None:
    """Eight clients sending 100,000 rows each; the probe's median stays far below the
    2 s the generated Kubernetes readiness probe waits (liveness: 5 s)."""
    server = serve(iris_model, env={"SHIPML_MAX_QUEUE": "1000000"})
    body = b'{"inputs": [' + b",".join([b"[5,3,1,0]"] * 100_000) + b"]}"
    stop = time.monotonic() + 5

    async def run() -> tuple[list[float], Counter[int]]:
        statuses: Counter[int] = Counter()
        latencies: list[float] = []

        async def big() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                while time.monotonic() < stop:
                    answer = await client.post(
                        "/predict", content=body, headers={"content-type": "application/json"}
                    )
                    statuses[answer.status_code] += 1
                    assert len(answer.json()) == 100_000

        async def probe() -> None:
            await asyncio.sleep(1)  # the big requests are under way
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    assert (await client.get("/health/live")).status_code == 200
                    latencies.append(time.perf_counter() - started)
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(big() for _ in range(8)), probe())
        return latencies, statuses

    latencies, statuses = asyncio.run(run())
    assert set(statuses) == {200} and sum(statuses.values()) >= 8
    assert statistics.median(latencies) < 0.5, sorted(latencies)


def test_a_port_the_service_cannot_have_is_one_clear_line(iris_model: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_shipml("serve", iris_model, "--port", str(port), check=False)
    assert busy.returncode == 1 and "Traceback" not in busy.stderr + busy.stdout
    assert f"error: port {port} is already in use on 127.0.0.1" in busy.stderr
    elsewhere = run_shipml("serve", iris_model, "--host", "192.0.2.1", check=False)
    assert elsewhere.returncode == 1 and "Traceback" not in elsewhere.stderr
    assert "192.0.2.1 is not an address of this machine" in elsewhere.stderr
    unknown = run_shipml("serve", iris_model, "--host", "no-such-host.invalid", check=False)
    assert unknown.returncode == 1 and "cannot listen on host 'no-such-host.invalid'" in (
        unknown.stderr
    )
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to listen without the capability")
    low = subprocess.run(  # root without CAP_NET_BIND_SERVICE: as an ordinary user
        ["setpriv", "--bounding-set=-net_bind_service", SHIPML, "serve", iris_model],
        env={**os.environ, "SHIPML_PORT": "81"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert low.returncode == 1 and "Traceback" not in low.stderr
    assert "no permission to listen on 127.0.0.1:81: ports below 1024" in low.stderr
