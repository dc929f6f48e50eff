"""A score.py's deadlines on the model thread (serving/deadlines.py), through the batcher
and a real one-thread executor: SCORING_TIMEOUT_MS answers the client at the deadline;
WORKER_TIMEOUT restarts the worker of a run() that never returns."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shipml.errors import Overloaded
from shipml.serving.batching import Batcher
from shipml.serving.deadlines import Deadlines


class TimedOut(Exception):
    pass


class Restarted(Exception):
    pass


class Stuck:
    """Row 0 blocks (as in a C call) until released; -1 raises the model's own TimeoutError;
    any other row answers ten times itself."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def concat(self, parts: list[list[int]]) -> list[int]:
        return [row for part in parts for row in part]

    def predict(self, data: list[int]) -> list[int]:
        if data == [0]:
            self.release.wait(10)
        if data == [-1]:
            raise TimeoutError("the model's own")
        return [row * 10 for row in data]


def batcher_with(
    model: Stuck, executor: ThreadPoolExecutor, stuck: list[int], **times: float
) -> Batcher:
    deadlines = Deadlines(
        asyncio.get_running_loop(),
        executor,
        timeout_error=lambda: TimedOut("late"),
        restart_error=lambda: Restarted("restarting"),
        on_stuck=lambda: stuck.append(1),
        **times,  # type: ignore[arg-type]
    )
    return Batcher(model, coalesce=False, executor=executor, deadlines=deadlines)


def run(test: Any) -> None:
    asyncio.run(test())


def test_a_call_past_its_deadline_is_answered_and_the_next_waits_for_the_thread() -> None:
    """The client is answered at the deadline; the thread may still be busy (a C call), so
    the next job waits for it and then gets its own full allowance, as behind a busy
    worker. No restart while the call returns within WORKER_TIMEOUT."""

    async def go() -> None:
        model, stuck = Stuck(), []
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = batcher_with(model, executor, stuck, answer_within=0.2, restart_after=5.0)
            started = loop.time()
            with pytest.raises(TimedOut):
                await batcher.submit([0], 1, "stuck")
            assert 0.2 <= loop.time() - started < 1.0
            after = batcher.submit([2], 1, "after")
            await asyncio.sleep(0.4)  # twice its allowance, all spent behind the stuck call
            assert not after.done()
            model.release.set()
            assert await after == [20]
            with pytest.raises(TimeoutError, match="the model's own"):
                await batcher.submit([-1], 1, "own")
        assert stuck == []

    run(go)


def test_a_run_that_outlives_worker_timeout_restarts_the_worker() -> None:
    async def go() -> None:
        model, stuck = Stuck(), []
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = batcher_with(model, executor, stuck, answer_within=30.0, restart_after=0.3)
            started = loop.time()
            first = batcher.submit([0], 1, "stuck")
            await asyncio.sleep(0.05)
            behind = batcher.submit([2], 1, "behind")  # waits for the thread
            with pytest.raises(Restarted):  # its own client: told, not left waiting
                await first
            assert 0.3 <= loop.time() - started < 1.5
            with pytest.raises(Overloaded, match="WORKER_TIMEOUT") as refused:
                await behind
            assert refused.value.status == 503 and refused.value.retry_after == 1
            with pytest.raises(Overloaded):  # and whatever comes until the worker is gone
                await batcher.submit([3], 1, "later")
            assert stuck == [1]  # the worker was asked to restart, once
            model.release.set()

    run(go)


def test_a_call_already_answered_at_its_deadline_still_restarts_a_stuck_worker() -> None:
    async def go() -> None:
        model, stuck = Stuck(), []
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = batcher_with(model, executor, stuck, answer_within=0.1, restart_after=0.4)
            with pytest.raises(TimedOut):
                await batcher.submit([0], 1, "stuck")
            behind = batcher.submit([2], 1, "behind")
            with pytest.raises(Overloaded, match="restarting"):
                await behind
            assert stuck == [1]
            model.release.set()

    run(go)


def test_calls_that_return_in_time_never_restart_anything() -> None:
    async def go() -> None:
        model, stuck = Stuck(), []
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = batcher_with(model, executor, stuck, answer_within=1.0, restart_after=0.2)
            for row in range(1, 4):
                assert await batcher.submit([row], 1, "r") == [row * 10]
            await asyncio.sleep(0.4)  # past restart_after of every call: nothing fires
        assert stuck == []

    run(go)
