"""WORKER_TIMEOUT: a score.py's run() that does not return, under Microsoft's server and
under shipml, on the same script and the same requests.

Microsoft's server runs gunicorn with ``--timeout $WORKER_TIMEOUT`` (300 s by default): a
worker whose request outlives it is aborted and replaced, and its client gets gunicorn's
500 page. shipml cannot kill its model thread; it answers that client with a 500 that says
what happened and restarts the worker (src/shipml/serving/deadlines.py). Both must be back to
answering afterwards, with init() run again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, stop_all
from tests.integration.test_scoring_timeout import both_servers, project, shipml_server

WORKER_TIMEOUT = 2

SCRIPT = """\
import json
import os
import time

STARTED = []


def init():
    STARTED.append(os.getpid())


def run(raw_data):
    work = json.loads(raw_data)["work"]
    if work == "hang":  # one C call that outlives the worker's timeout
        time.sleep(60)
    return {"work": work, "init_pid": STARTED[0]}
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    work = tmp_path_factory.mktemp("worker-timeout")
    limits = {"WORKER_TIMEOUT": str(WORKER_TIMEOUT), "SCORING_TIMEOUT_MS": "60000"}
    with both_servers(work, "hang", SCRIPT, limits) as pair:
        yield pair


def score(url: str, work: str) -> tuple[int, dict[str, object], float]:
    """Status, body (JSON; {} for another type) and seconds."""
    started = time.monotonic()
    response = httpx.post(f"{url}/score", json={"work": work}, timeout=60)
    json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if json else {}, time.monotonic() - started


def answered_again(url: str, within: float = 60.0) -> dict[str, object]:
    """The first 200 answer to a quick request once the new worker is up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, body, _ = score(url, "quick")
        if status == 200:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer again within {within:.0f} s")


def test_a_run_that_outlives_worker_timeout_restarts_the_worker(
    servers: tuple[str, Server],
) -> None:
    microsoft, ours = servers
    before = {url: score(url, "quick")[1]["init_pid"] for url in (microsoft, ours.url)}

    # Microsoft's: gunicorn aborts the worker at the timeout (its SIGABRT ends the sleep)
    # and answers its own 500 page
    status, _, seconds = score(microsoft, "hang")
    assert status == 500 and WORKER_TIMEOUT <= seconds < WORKER_TIMEOUT + 5
    # shipml: told at the timeout, with Microsoft's header for a failed run()
    started = time.monotonic()
    behind: list[httpx.Response] = []  # a request that waits for the stuck thread
    waiter = threading.Timer(1.0, lambda: behind.append(post(ours.url)))
    waiter.start()
    response = httpx.post(f"{ours.url}/score", json={"work": "hang"}, timeout=60)
    seconds = time.monotonic() - started
    waiter.join()
    assert response.status_code == 500
    assert "WORKER_TIMEOUT" in response.json()["message"]
    assert response.headers["x-ms-run-function-failed"] == "True"
    assert WORKER_TIMEOUT <= seconds < WORKER_TIMEOUT + 5
    assert behind[0].status_code == 503 and behind[0].headers["retry-after"] == "1"

    # both come back with a new worker, whose init() ran again
    for url in (microsoft, ours.url):
        assert answered_again(url)["init_pid"] != before[url]
    assert "this worker restarts" in ours.log.read_text()


def post(url: str) -> httpx.Response:
    return httpx.post(f"{url}/score", json={"work": "quick"}, timeout=60)


def test_a_bad_worker_timeout_stops_serve_naming_the_variable(tmp_path: Path) -> None:
    folder = project(tmp_path / "p", "bad", SCRIPT)
    env = {"SHIPML_STORE": str(tmp_path / "store"), "SHIPML_CACHE": str(tmp_path / "cache")}
    server = shipml_server(folder, "bad", {**env, "WORKER_TIMEOUT": "soon"})
    try:
        assert server.process.wait(timeout=120) == 1
        last = server.log.read_text().strip().splitlines()[-1]
        assert "WORKER_TIMEOUT must be a whole number of seconds" in last
    finally:
        stop_all([server])
