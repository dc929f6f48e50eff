"""The watchdog behind SCORING_TIMEOUT_MS (src/shipml/scoring/azureml/deadline.py)."""

from __future__ import annotations

import threading
import time

import pytest

from shipml.errors import LoadFailed
from shipml.scoring.azureml.deadline import (
    DEFAULT_MS,
    Expired,
    Watchdog,
    timeout_ms,
    worker_timeout_s,
)


def spin(seconds: float) -> int:
    end, turns = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        turns += 1
    return turns


def test_python_code_past_its_deadline_is_stopped_on_the_main_thread() -> None:
    watchdog = Watchdog()
    started = time.monotonic()
    with pytest.raises(Expired), watchdog.limit(0.2):
        spin(10)
    assert 0.2 <= time.monotonic() - started < 2


def test_python_code_past_its_deadline_is_stopped_on_another_thread() -> None:
    watchdog = Watchdog()
    outcome: list[str] = []

    def call() -> None:
        try:
            with watchdog.limit(0.2):
                spin(10)
            outcome.append("returned")
        except Expired:
            outcome.append("expired")

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(5)
    assert outcome == ["expired"]


def test_a_catch_all_does_not_swallow_it() -> None:
    watchdog = Watchdog()
    with pytest.raises(Expired), watchdog.limit(0.1):
        try:
            spin(10)
        except Exception:  # what a score.py may write around its work
            pytest.fail("Expired was caught as an Exception")


def test_a_call_within_its_limit_is_left_alone() -> None:
    watchdog = Watchdog()
    with watchdog.limit(5):
        assert spin(0.05) > 0


def test_calls_that_end_at_their_deadline_never_raise_outside_it() -> None:
    """Calls that end about when their deadline passes race the watchdog: whatever it
    raised for them must surface inside ``limit`` or be withdrawn, never later."""
    watchdog = Watchdog()
    expired = 0
    for turn in range(100):
        # 10 to 30 ms for 20 ms of work: the watchdog needs the GIL to fire, which a
        # spinning thread gives up every 5 ms (sys.getswitchinterval()), so the shortest
        # limits expire, the longest do not, and the middle one races.
        try:
            with watchdog.limit(0.010 + 0.005 * (turn % 5)):
                spin(0.020)
        except Expired:
            expired += 1
        spin(0.003)  # an exception still pending would land here, outside the try
    assert 0 < expired < 100  # the race was run from both sides


def test_calls_on_several_threads_each_get_their_own_deadline() -> None:
    watchdog = Watchdog()
    outcome: dict[str, str] = {}

    def call(name: str, limit: float, work: float) -> None:
        try:
            with watchdog.limit(limit):
                spin(work)
            outcome[name] = "returned"
        except Expired:
            outcome[name] = "expired"

    threads = [
        threading.Thread(target=call, args=("long", 5.0, 0.5)),
        threading.Thread(target=call, args=("short", 0.2, 5.0)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcome == {"long": "returned", "short": "expired"}


def test_the_limit_comes_from_scoring_timeout_ms() -> None:
    assert timeout_ms({}) == DEFAULT_MS == 3_600_000
    assert timeout_ms({"SCORING_TIMEOUT_MS": "250"}) == 250
    assert timeout_ms({"SCORING_TIMEOUT_MS": " 250 "}) == 250


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5", "1e3"])
def test_a_bad_limit_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(LoadFailed, match="SCORING_TIMEOUT_MS must be a whole number") as error:
        timeout_ms({"SCORING_TIMEOUT_MS": value})
    assert repr(value) in error.value.message


def test_the_worker_timeout_comes_from_worker_timeout() -> None:
    assert worker_timeout_s({}) == 300
    assert worker_timeout_s({"WORKER_TIMEOUT": "45"}) == 45
    assert worker_timeout_s({"WORKER_TIMEOUT": "0"}) == 0  # gunicorn's "no limit"


@pytest.mark.parametrize("value", ["soon", "-5", "1.5"])
def test_a_bad_worker_timeout_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(LoadFailed, match="WORKER_TIMEOUT must be a whole number") as error:
        worker_timeout_s({"WORKER_TIMEOUT": value})
    assert repr(value) in error.value.message
