"""SCORING_TIMEOUT_MS: a score.py's run() that takes too long, under Microsoft's server and
under shipml, on the same script and the same requests (tests/azureml_reference.py starts
Microsoft's server).

Microsoft's server stops run() with SIGALRM and answers 500 {"message": "Scoring timeout
after N ms"}; shipml stops it from a watchdog thread and answers its client at the deadline
(src/shipml/scoring/azureml/deadline.py). Both must give the same answers, and shipml must go
on answering afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import azureml_reference as reference
from tests.conftest import Server, launch, run_shipml, stop_all

TIMEOUT_MS = 400

SCRIPT = """\
import json
import time


def init():
    pass


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def run(raw_data):
    work = json.loads(raw_data)["work"]
    if work == "spin":  # Python code: stopped where it is
        spin(20)
    elif work == "sleep":  # one C call: stopped when it returns
        time.sleep(3)
    elif work == "catch":  # the script's own catch-all
        try:
            spin(3)
        except Exception:
            return {"caught": True}
    elif work == "slow":  # under the limit
        time.sleep(0.1)
    return {"work": work}
"""

TIMED_OUT = {"message": f"Scoring timeout after {TIMEOUT_MS} ms"}


def project(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "score.py").write_text(script)
    (folder / "SOURCE.json").write_text(json.dumps({"entry_script": "score.py"}))
    (folder / "shipml.yaml").write_text(f"name: {name}\nscoring: score.py\n")
    return folder


def shipml_server(folder: Path, name: str, env: dict[str, str]) -> Server:
    run_shipml("train", cwd=folder, env=env)
    return launch((f"{name}@latest",), folder, env, cwd=folder)


@contextlib.contextmanager
def both_servers(
    work: Path, name: str, script: str, limits: dict[str, str]
) -> Iterator[tuple[str, Server]]:
    """Microsoft's server and shipml (one worker each) on ``script``, with ``limits`` in
    both environments; yields Microsoft's URL and shipml's server."""
    env = {
        **limits,
        "SHIPML_STORE": str(work / "store"),
        "SHIPML_CACHE": str(work / "cache"),
        "SHIPML_WORKERS": "1",
    }
    case = project(work / name, name, script)
    (work / "model").mkdir()
    port = reference.free_port()
    before = {variable: os.environ.get(variable) for variable in limits}
    os.environ.update(limits)  # the reference reads os.environ
    try:
        microsoft = reference.start_reference(case, work / "model", port, work / "ref.log")
    finally:
        for variable, value in before.items():
            if value is None:
                del os.environ[variable]
            else:
                os.environ[variable] = value
    ours = shipml_server(case, name, env)
    try:
        reference.wait_ready(port, microsoft)
        ours.wait_ready(120)
        yield f"http://127.0.0.1:{port}", ours
    finally:
        reference.stop(microsoft)
        stop_all([ours])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Server]]:
    """Microsoft's server and shipml on SCRIPT (shipml calls run() on its model thread:
    a score.py has no example to time it with at warm-up; tests/unit/test_deadline.py
    stops a call on the main thread)."""
    work = tmp_path_factory.mktemp("timeout")
    with both_servers(work, "spin", SCRIPT, {"SCORING_TIMEOUT_MS": str(TIMEOUT_MS)}) as pair:
        yield pair


def score(url: str, work: str) -> tuple[int, object, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/score", json={"work": work}, timeout=60)
    return response.status_code, response.json(), time.monotonic() - started


@pytest.mark.parametrize("work", ["none", "slow", "spin", "sleep"])
def test_a_run_past_the_limit_is_answered_as_microsofts_server_answers(
    servers: tuple[str, Server], work: str
) -> None:
    microsoft, ours = servers
    expected = score(microsoft, work)
    got = score(ours.url, work)
    assert got[:2] == expected[:2]
    if work in {"spin", "sleep"}:
        assert got[:2] == (500, TIMED_OUT)
        assert got[2] < 2.0, f"answered after {got[2]:.1f} s, the limit is {TIMEOUT_MS} ms"
    else:
        assert got[0] == 200
    # and the service goes on answering: at once after Python code was stopped, after a
    # sleep once its thread is back (as under a busy worker of Microsoft's)
    after = score(ours.url, "none")
    assert after[:2] == (200, {"work": "none"})
    if work == "spin":
        assert after[2] < 2.0, "the stopped run() still held the model thread"

    assert httpx.get(f"{ours.url}/health/live", timeout=10).status_code == 200


def test_a_catch_all_in_run_does_not_swallow_shipmls_timeout(
    servers: tuple[str, Server],
) -> None:
    """A documented difference: Microsoft's alarm raises TimeoutError, which a script's
    ``except Exception`` swallows (and its run() goes on); shipml's cannot be caught so."""
    microsoft, ours = servers
    assert score(microsoft, "catch")[:2] == (200, {"caught": True})
    assert score(ours.url, "catch")[:2] == (500, TIMED_OUT)


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5"])
def test_a_bad_limit_stops_serve_naming_the_variable(tmp_path: Path, value: str) -> None:
    folder = project(tmp_path / "p", "bad", SCRIPT)
    env = {"SHIPML_STORE": str(tmp_path / "store"), "SHIPML_CACHE": str(tmp_path / "cache")}
    server = shipml_server(folder, "bad", {**env, "SCORING_TIMEOUT_MS": value})
    try:
        assert server.process.wait(timeout=120) == 1
        last = server.log.read_text().strip().splitlines()[-1]
        assert "SCORING_TIMEOUT_MS must be a whole number of milliseconds above 0" in last
        assert repr(value) in last
    finally:
        stop_all([server])
