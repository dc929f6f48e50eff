"""The batcher in isolation: a hand-driven clock and a fake model that records its calls."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from shipml.errors import ModelError, Overloaded
from shipml.serving.batching import Batcher
from shipml.serving.metrics import Metrics

T = TypeVar("T")


class FakeClock:
    """Time moves only when a test (or the fake model) moves it."""

    def __init__(self) -> None:
        self.time = 100.0
        self.timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.time + delay, callback)
        heapq.heappush(self.timers, (timer.when, next(self._order), timer))
        return timer

    def pending(self) -> list[FakeTimer]:
        return [t for _, _, t in self.timers if not t.cancelled]

    def advance(self, seconds: float) -> None:
        """Move time on, firing the timers that fall due, in order."""
        end = self.time + seconds
        while self.timers and self.timers[0][0] <= end:
            when, _, timer = heapq.heappop(self.timers)
            self.time = when
            if not timer.cancelled:
                timer.callback()
        self.time = end


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeModel:
    """Rows are numbers; the answer is ten times each. A negative row makes it raise.

    ``cost`` seconds of fake time pass during every call, as a real model's would.
    """

    def __init__(self, clock: FakeClock | None = None, cost: float = 0.0) -> None:
        self.clock, self.cost = clock, cost
        self.calls: list[list[int]] = []

    def concat(self, parts: list[list[int]]) -> list[int]:
        return [row for part in parts for row in part]

    def predict(self, data: list[int]) -> list[int]:
        self.calls.append(list(data))
        if self.clock is not None:
            self.clock.time += self.cost
        if any(row < 0 for row in data):
            raise ValueError(f"negative row in {data}")
        return [row * 10 for row in data]


def run(test: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(test())


async def tick() -> None:
    """Let the event loop run the callbacks that are ready (the batcher's next flush)."""
    for _ in range(3):
        await asyncio.sleep(0)


def make(model: Any, clock: FakeClock | None = None, **options: Any) -> Batcher:
    return Batcher(model, clock=clock or FakeClock(), **options)


def test_a_lone_request_runs_at_once_without_any_timer() -> None:
    async def go() -> None:
        clock = FakeClock()
        model = FakeModel(clock, cost=0.003)
        batcher = make(model, clock)
        for row in (1, 2, 3):  # one client, one request at a time
            assert await batcher.submit([row], 1, f"r{row}") == [row * 10]
            assert clock.pending() == []  # nothing ever waited on the clock
        assert model.calls == [[1], [2], [3]]

    run(go)


def test_a_lone_client_is_answered_within_its_submit_and_a_crowd_still_coalesces() -> None:
    async def go() -> None:
        clock = FakeClock()
        model = FakeModel(clock, cost=0.0001)
        batcher = make(model, clock)
        answered_at_once = []
        for row in range(6):  # one client: each request after its answer, 1 ms apart
            job = batcher.submit([row], 1, "r")
            answered_at_once.append(job.done())
            assert await job == [row * 10]
            await tick()  # the next request comes in a later turn of the loop
            clock.advance(0.001)
        # the first two are batches like any other; then the batcher knows it is alone
        assert answered_at_once == [False, False, True, True, True, True]
        # a crowd arrives in one tick: the first runs at once, the rest share one call
        crowd = [batcher.submit([row], 1, "r") for row in (7, 8, 9)]
        assert [job.done() for job in crowd] == [True, False, False]
        assert await asyncio.gather(*crowd) == [[70], [80], [90]]
        assert model.calls[-2:] == [[7], [8, 9]]

    run(go)


def test_requests_of_the_same_tick_share_one_call_and_get_their_own_rows() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model)
        futures = [
            batcher.submit([1, 2], 2, "a"),
            batcher.submit([3], 1, "b"),
            batcher.submit([4, 5, 6], 3, "c"),
        ]
        assert model.calls == []  # not before the next tick
        results = await asyncio.gather(*futures)
        assert model.calls == [[1, 2, 3, 4, 5, 6]]
        assert results == [[10, 20], [30], [40, 50, 60]]

    run(go)


def test_batches_keep_order_and_respect_max_batch_size() -> None:
    async def go() -> None:
        model = FakeModel()
        metrics = Metrics()
        batcher = make(model, max_batch_size=4, metrics=metrics)
        futures = [batcher.submit([i], 1, f"r{i}") for i in range(10)]
        big = batcher.submit(list(range(100, 106)), 6, "big")  # over the size: runs alone
        results = await asyncio.gather(*futures, big)
        assert model.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], list(range(100, 106))]
        assert results[:10] == [[i * 10] for i in range(10)]
        assert results[10] == [r * 10 for r in range(100, 106)]
        registry = metrics.registry
        assert registry.get_sample_value("shipml_batch_size_count") == 4
        assert registry.get_sample_value("shipml_batch_size_sum") == 16
        assert registry.get_sample_value("shipml_queue_wait_seconds_count") == 4

    run(go)


def test_one_bad_request_fails_alone() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model)
        futures = [batcher.submit([row], 1, f"r{row}") for row in (1, 2, -3, 4, 5)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[:2] == [[10], [20]] and results[3:] == [[40], [50]]
        assert isinstance(results[2], ValueError) and "negative row" in str(results[2])
        assert model.calls[0] == [1, 2, -3, 4, 5]  # tried together first, then bisected
        assert [-3] in model.calls and len(model.calls) <= 7

    run(go)


def test_a_model_answering_the_wrong_count_fails_every_request_clearly() -> None:
    class Dropping(FakeModel):
        def predict(self, data: list[int]) -> list[int]:
            return super().predict(data)[:-1]

    async def go() -> None:
        batcher = make(Dropping())
        futures = [batcher.submit([row], 1, "r") for row in (1, 2)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, ModelError) for r in results)
        assert "returned 0 results for 1 rows" in str(results[0])

    run(go)


def test_a_cancelled_job_is_dropped_before_the_call() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model)
        first, gone, last = (batcher.submit([row], 1, "r") for row in (1, 2, 3))
        gone.cancel()  # its client disconnected while it waited
        assert await asyncio.gather(first, last) == [[10], [30]]
        assert model.calls == [[1, 3]]
        assert batcher.depth == 0

    run(go)


def test_a_full_queue_refuses_with_overloaded() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model, max_queue=3)
        accepted = [batcher.submit([row], 1, "r") for row in (1, 2, 3)]
        with pytest.raises(Overloaded) as refused:
            batcher.submit([4], 1, "r")
        assert refused.value.status == 503 and refused.value.retry_after == 1
        assert "3 rows are waiting" in refused.value.message
        assert await asyncio.gather(*accepted) == [[10], [20], [30]]
        # once drained there is room again, and an empty queue takes any request
        assert await batcher.submit(list(range(5)), 5, "big") == [0, 10, 20, 30, 40]

    run(go)


def test_under_load_the_batch_waits_for_clients_about_to_return() -> None:
    async def go() -> None:
        clock = FakeClock()
        model = FakeModel(clock, cost=0.003)
        batcher = make(model, clock, max_latency=0.005)
        # Two clients for a second, each back 0.2 ms after its answer: two jobs in the
        # system most of the time.
        for _ in range(300):
            a, b = batcher.submit([1], 1, "a"), batcher.submit([2], 1, "b")
            await asyncio.gather(a, b)
            clock.advance(0.0002)
        calls = len(model.calls)
        # One comes back first: the batch holds for the other instead of running alone.
        first = batcher.submit([3], 1, "a")
        await tick()
        assert len(model.calls) == calls and not first.done()
        assert [t.when - clock.time for t in clock.pending()] == [pytest.approx(0.003)]
        second = batcher.submit([4], 1, "b")  # the batch is full: it goes at once
        assert await asyncio.gather(first, second) == [[30], [40]]
        assert model.calls[-1] == [3, 4]
        # If the other never comes, the wait ends after one model call's time.
        clock.advance(0.010)
        alone = batcher.submit([5], 1, "a")
        await tick()
        assert not alone.done()
        clock.advance(0.003)
        assert await alone == [50]
        assert model.calls[-1] == [5]

    run(go)


def test_the_fill_wait_never_exceeds_max_latency() -> None:
    async def go() -> None:
        clock = FakeClock()
        model = FakeModel(clock, cost=0.050)  # a slow model
        batcher = make(model, clock, max_latency=0.002)
        for _ in range(20):
            await asyncio.gather(*(batcher.submit([1], 1, "r") for _ in range(4)))
            clock.advance(0.010)
        lone = batcher.submit([1], 1, "r")
        await tick()
        assert [t.when - clock.time for t in clock.pending()] == [pytest.approx(0.002)]
        clock.advance(0.002)
        assert await lone == [10]

    run(go)


async def after_a_burst(clock: FakeClock) -> Batcher:
    """A batcher that has just served a second of eight busy clients."""
    batcher = make(FakeModel(clock, cost=0.003), clock, max_latency=0.005)
    for _ in range(300):
        await asyncio.gather(*(batcher.submit([1], 1, "r") for _ in range(8)))
        clock.advance(0.0002)
    return batcher


def test_after_a_burst_a_lone_client_soon_stops_waiting() -> None:
    async def go() -> None:
        clock = FakeClock()
        batcher = await after_a_burst(clock)
        clock.advance(1.0)  # then a quiet second
        for _ in range(3):  # one client alone: answered without waiting on the clock
            assert await batcher.submit([2], 1, "r") == [20]
            assert clock.pending() == []

    run(go)


def test_right_after_a_burst_a_lone_client_waits_at_most_twice() -> None:
    async def go() -> None:
        clock = FakeClock()
        batcher = await after_a_burst(clock)
        waits = []
        for _ in range(6):  # then one client, straight away: the average still says 8
            job = batcher.submit([2], 1, "r")
            await tick()
            waits.append(len(clock.pending()))
            clock.advance(0.003)
            assert await job == [20]
            clock.advance(0.0002)
        assert waits == [1, 1, 0, 0, 0, 0]

    run(go)


def test_without_coalescing_each_request_is_its_own_call() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model, coalesce=False)
        futures = [batcher.submit([row, row], 2, "r") for row in (1, 2)]
        assert futures[0].done()  # an idle inline model runs a lone job right away
        assert await asyncio.gather(*futures) == [[10, 10], [20, 20]]
        assert model.calls == [[1, 1], [2, 2]]

    run(go)


def test_slow_models_run_in_the_executor_while_requests_queue() -> None:
    class Blocking(FakeModel):
        def __init__(self) -> None:
            super().__init__()
            self.started, self.release = threading.Event(), threading.Event()

        def predict(self, data: list[int]) -> list[int]:
            self.started.set()
            self.release.wait(10)
            return super().predict(data)

    async def go() -> None:
        model = Blocking()
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = make(model, executor=executor, max_queue=3)
            first = batcher.submit([1], 1, "r1")
            await asyncio.get_running_loop().run_in_executor(None, model.started.wait, 10)
            queued = [batcher.submit([row], 1, f"r{row}") for row in (2, 3, 4)]
            with pytest.raises(Overloaded):  # three rows wait while the model is busy
                batcher.submit([5], 1, "r5")
            queued[1].cancel()  # gone while the model was busy
            model.release.set()
            assert await first == [10]
            assert await asyncio.gather(queued[0], queued[2]) == [[20], [40]]
        assert model.calls == [[1], [2, 4]]

    run(go)


def test_close_fails_what_is_still_queued() -> None:
    async def go() -> None:
        batcher = make(FakeModel())
        waiting = batcher.submit([1], 1, "r")
        await batcher.close()
        with pytest.raises(Overloaded, match="shutting down"):
            await waiting

    run(go)


# -- large requests: never on the event loop, called in chunks -------------------------


class ThreadRecording(FakeModel):
    """Records the thread of each call (the event loop's, or the executor's)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def predict(self, data: list[int]) -> list[int]:
        self.threads.append(threading.current_thread().name)
        return super().predict(data)


def test_a_batch_runs_inline_only_up_to_inline_rows() -> None:
    async def go() -> None:
        model = ThreadRecording()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as executor:
            batcher = make(model, executor=executor, inline_rows=4)
            assert await batcher.submit([1, 2, 3, 4], 4, "small") == [10, 20, 30, 40]
            assert await batcher.submit([1] * 5, 5, "larger") == [10] * 5
            heavy = batcher.submit([7], 1, "heavy body", inline=False)
            assert await heavy == [70]
        loop_thread = threading.current_thread().name
        assert model.threads[0] == loop_thread
        assert model.threads[1].startswith("model") and model.threads[2].startswith("model")

    run(go)


def test_a_big_job_is_called_in_chunks_and_small_jobs_take_turns() -> None:
    async def go() -> None:
        model = ThreadRecording()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as executor:
            batcher = make(model, executor=executor, max_batch_size=2, chunk_rows=3)
            big = batcher.submit(list(range(100, 108)), 8, "big")
            await tick()
            smalls = [batcher.submit([i], 1, f"s{i}") for i in (1, 2, 3)]
            results = await asyncio.gather(big, *smalls)
        assert results[0] == [r * 10 for r in range(100, 108)]  # whole, in order
        assert results[1:] == [[10], [20], [30]]
        # chunks of three rows; the small jobs waited for one chunk, not for all three
        assert model.calls == [[100, 101, 102], [1, 2], [103, 104, 105], [3], [106, 107]]
        assert batcher.depth == 0

    run(go)


def test_a_big_job_whose_client_left_stops_between_chunks() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model, max_batch_size=1, chunk_rows=2)
        big = batcher.submit([1, 2, 3, 4, 5, 6], 6, "big")
        while not model.calls:
            await asyncio.sleep(0)
        big.cancel()
        assert await batcher.submit([9], 1, "next") == [90]
        await tick()
        assert model.calls == [[1, 2], [9]]
        assert batcher.depth == 0

    run(go)


def test_a_failing_chunk_fails_its_job_alone() -> None:
    async def go() -> None:
        model = FakeModel()
        batcher = make(model, max_batch_size=1, chunk_rows=2)
        bad = batcher.submit([1, 2, -3, 4, 5, 6], 6, "bad")
        good = batcher.submit([7], 1, "good")
        results = await asyncio.gather(bad, good, return_exceptions=True)
        assert isinstance(results[0], ValueError) and results[1] == [70]
        assert [5, 6] not in model.calls  # no chunk after the one that failed
        assert batcher.depth == 0

    run(go)
