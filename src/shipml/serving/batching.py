"""Adaptive micro-batching: concurrent requests for one model become one vectorised call.

A model call has a fixed cost and a per-row cost; for most models the fixed cost is
most of it (a calibrated SVC on iris: ~2 ms for one row, ~2.5 ms for 64; a 100-tree
forest: ~9 ms for one row, ~10 ms for 64). So under load, one call for many requests
is far cheaper than one call each. The :class:`Batcher` of a worker coalesces them:

- A request submits a :class:`Job`: its prepared data, row count, future, enqueue time
  and request id travel together; nothing per request is kept anywhere else.
- When the model is idle, the batch starts on the next tick of the event loop
  (``call_soon``): requests already parsed in this tick join it, and nothing waits on a
  timer. A lone client (an in-flight average of one, and one job in each of the last
  two batches) is answered within its submit, without waiting for that tick.
- While the model runs (inline on the event loop for fast models, on a one-thread
  executor for slow ones), new jobs queue. When it returns, the next batch takes the
  queue in order, up to ``max_batch_size`` rows; each job gets its slice of the results.
- A short fill wait, only under load: when the model frees up and fewer jobs are queued
  than the batcher has recently seen in flight (clients of the last batch are about to
  come back), it holds the batch for them, never longer than ``max_latency`` nor longer
  than one model call (nor for more jobs than the larger of the last two batches had,
  so the average's lag after a burst costs a lone client two waits at most). One
  client alone never waits: with an average of one job in flight there is nobody to
  wait for.
- A batch that raises is split in halves and retried, so one bad request fails alone.
- A job whose future was cancelled (the client went away) is dropped before the call.
- The queue is bounded in rows: past ``max_queue`` a submit raises
  :class:`~shipml.errors.Overloaded` (503 with ``Retry-After``).
- The event loop is never held by a long call. A batch runs inline only when the model
  is quick for its rows (``inline_rows``, measured at warm-up); anything larger runs on
  the executor's thread. A job of more than ``chunk_rows`` rows (say 100,000 rows for a
  model that does ~5,000 in a few tens of milliseconds) is a *big* job: it is called
  in chunks of ``chunk_rows``, and the small jobs that arrive meanwhile take turns with
  its chunks, so they wait for one chunk at most, not for the whole big job.

Time comes from a :class:`Clock` so tests drive it by hand (``tests/unit/test_batching.py``).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipml.errors import ModelError, Overloaded
from shipml.serving.deadlines import Deadlines
from shipml.serving.metrics import Metrics

# How fast the in-flight estimate forgets, in seconds: long enough to span many batches,
# short enough to follow a change of load within a second (the last batches cap it sooner).
CONCURRENCY_MEMORY = 0.25
# Below this in-flight average there is one client (see Batcher._alone).
LONE = 1.5


class Model(Protocol):
    """The part of :class:`~shipml.scoring.Scorer` the batcher uses."""

    def predict(self, data: Any) -> Any: ...

    def concat(self, parts: list[Any]) -> Any: ...


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time and timers; :class:`LoopClock` in service, a hand-driven one in tests."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_later(delay, callback)


@dataclass(slots=True, eq=False)
class Job:
    """One request waiting for the model: everything about it travels here."""

    data: Any
    rows: int
    future: asyncio.Future[Any]
    enqueued: float
    request_id: str
    inline: bool = True  # may run on the event loop if its rows allow (False: a heavy body)
    taken: int = 0  # a big job: rows handed to the model so far
    parts: list[Any] = field(default_factory=list)  # a big job: the results of its chunks


@dataclass(slots=True)
class Batch:
    """What one model call gets: whole jobs, or one chunk ``[start, stop)`` of a big job."""

    jobs: list[Job]
    rows: int
    chunk: tuple[int, int] | None = None


def rows_of(data: Any, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of prepared data: an array or list, or anything with ``rows()``."""
    part = getattr(data, "rows", None)
    if callable(part):
        return part(start, stop)
    return data[start:stop]


class Batcher:
    """Queue jobs for one model and run them in batches (see the module docstring).

    ``coalesce=False`` runs one job per call with its result unsplit (models that are
    not batchable, or ``SHIPML_BATCHING=false``) but keeps the bounded queue, the
    metrics and the dropping of abandoned jobs. Without an ``executor`` every call is
    inline; with one, a batch runs inline only up to ``inline_rows`` rows, and big jobs
    are split when ``chunk_rows`` is set (batchable models only: their results split and
    join by row). With ``deadlines`` (a score.py's ``SCORING_TIMEOUT_MS`` and
    ``WORKER_TIMEOUT``: serving/deadlines.py), calls on the executor go through them.
    """

    def __init__(
        self,
        model: Model,
        *,
        coalesce: bool = True,
        max_batch_size: int = 64,
        max_latency: float = 0.005,
        max_queue: int = 1024,
        executor: Executor | None = None,
        inline_rows: int = 0,
        chunk_rows: int = 0,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.model = model
        self.coalesce = coalesce
        self.max_batch_size = max(1, max_batch_size)
        self.max_latency = max(0.0, max_latency)
        self.max_queue = max(1, max_queue)
        self.executor = executor
        self.inline_rows = inline_rows if executor is not None else math.inf
        self.chunk_rows = max(chunk_rows, self.max_batch_size) if chunk_rows > 0 else 0
        self.metrics = metrics
        self.deadlines = deadlines
        self.loop = asyncio.get_running_loop()
        self.clock: Clock = clock or LoopClock(self.loop)
        self._queue: deque[Job] = deque()
        self._big: deque[Job] = deque()  # jobs of more than chunk_rows rows, called in chunks
        self._big_turn = False  # after a batch of small jobs, a big job's chunk goes next
        self._rows = 0  # rows queued
        self._busy = False  # a batch is scheduled, waiting to fill, or running
        self._fill_timer: Timer | None = None
        self._running: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs
        # Jobs in the system (queued or running), as a time-weighted moving average.
        self._in_system = 0
        self._concurrency = 0.0
        self._changed = self.clock.now()
        self._call_seconds = 0.0  # the last model call's duration
        self._recent: deque[int] = deque(maxlen=2)  # jobs in each of the last two batches
        self._ran_at_once = False  # a lone job ran within its submit in this loop turn

    # -- the request side ------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows waiting for the model."""
        return self._rows

    def submit(
        self, data: Any, rows: int, request_id: str, inline: bool = True
    ) -> asyncio.Future[Any]:
        """Queue one request; the future gets its results (a list of ``rows`` results).

        ``inline=False`` keeps the request off the event loop whatever its rows (a body
        too large to judge by its row count). Cancel the future to withdraw the job: it
        is dropped before the model sees it.
        """
        if (self._queue or self._big) and self._rows + rows > self.max_queue:
            raise Overloaded(
                f"the service is at capacity ({self._rows} rows are waiting for the model); "
                "retry in a moment, or add workers or replicas"
            )
        now = self.clock.now()
        job = Job(data, rows, self.loop.create_future(), now, request_id, inline)
        if self.chunk_rows and rows > self.chunk_rows:
            self._big.append(job)
        else:
            self._queue.append(job)
        self._rows += rows
        self._track(now, +1)
        if not self._busy:
            self._busy = True
            if not (inline and rows <= self.inline_rows) or (self.coalesce and not self._alone()):
                self.loop.call_soon(self._flush)  # next tick: this tick's requests join
            else:
                self._flush_now()  # nothing to coalesce and an inline call: run it now
        elif self._fill_timer is not None and self._filled():
            self._fill_timer.cancel()  # filled: go now (next tick, so this tick's jobs join)
            self._fill_timer = None
            self.loop.call_soon(self._flush_now)
        return job.future

    async def close(self) -> None:
        """Fail whatever is still queued (the worker is stopping)."""
        if self._fill_timer is not None:
            self._fill_timer.cancel()
        for queue in (self._queue, self._big):
            while queue:
                job = queue.popleft()
                if not job.future.done():
                    job.future.set_exception(Overloaded("the service is shutting down; retry"))
        self._rows = 0

    # -- scheduling ------------------------------------------------------------------------

    def _flush(self) -> None:
        """The model is free: start the next batch, or wait briefly for it to fill."""
        self._fill_timer = None
        if not self._queue and not self._big:
            self._busy = False
            return
        delay = self._fill_delay() if self._queue and not self._big else 0.0
        if delay > 0:
            self._fill_timer = self.clock.call_later(delay, self._flush_now)
            return
        self._flush_now()

    def _flush_now(self) -> None:
        self._fill_timer = None
        batch = self._take()
        if batch is None:
            self._busy = False
            return
        if batch.rows <= self.inline_rows and all(job.inline for job in batch.jobs):
            self._run_inline(batch)
            self._next()
        else:
            self._running = self.loop.create_task(self._run_in_executor(batch))

    def _next(self) -> None:
        if self._queue or self._big:
            self.loop.call_soon(self._flush)  # a tick, so jobs parsed in this one join
        else:
            self._busy = False

    def _alone(self) -> bool:
        """Is this job, as far as anyone can tell, the only one coming?

        Yes when the in-flight average says one client (it counts this job), the last
        two batches held one job each, and no job ran at once earlier in this tick (a
        yes notes that one did, until the loop's next turn). The
        lone client is then answered within its own submit, without the two loop turns
        of a batch (the flush, then the request's wake-up): ~5 µs of a ~80 µs request for
        a small model (docs/performance.md). When a crowd arrives after a lone client,
        its first request runs alone this way and the rest of its tick coalesce.
        """
        recent = self._recent
        if self._concurrency >= LONE or self._ran_at_once or len(recent) < 2 or max(recent) > 1:
            return False
        self._ran_at_once = True
        self.loop.call_soon(self._new_tick)
        return True

    def _new_tick(self) -> None:
        self._ran_at_once = False

    def _fill_delay(self) -> float:
        """How long to wait for more jobs before calling the model; 0 means go now.

        Waiting pays only when more jobs are about to arrive: when the in-flight estimate
        says more clients are active than jobs are queued. Typical case: the clients of
        the batch just answered send their next requests a fraction of a millisecond
        later; without the wait, the first to return would get a model call of its own
        and the rest would wait for that whole call. The wait is capped by
        ``max_latency`` and by the time of one model call (waiting longer than a call
        costs more than making two calls).
        """
        if not self.coalesce or self._filled():
            return 0.0
        return min(self.max_latency, self._call_seconds)

    def _filled(self) -> bool:
        return self._rows >= self.max_batch_size or len(self._queue) >= self._target()

    def _target(self) -> int:
        """Jobs worth waiting for: the recent average number of jobs in the system, but
        never more than the larger of the last two batches held.

        The average lags a drop in load by about a second (``CONCURRENCY_MEMORY``); the
        last batches do not: once a burst is over, a lone client stops waiting after two
        model calls instead of waiting on every call for a second (measured: a 100-tree
        forest at c=1 right after load had its p99 raised by the whole wait).
        """
        self._track(self.clock.now(), 0)
        recent = max(self._recent, default=self.max_batch_size)
        return min(self.max_batch_size, recent, math.floor(self._concurrency + 0.5))

    def _track(self, now: float, change: int) -> None:
        elapsed = now - self._changed
        if elapsed > 0:
            weight = 1.0 - math.exp(-elapsed / CONCURRENCY_MEMORY)
            self._concurrency += weight * (self._in_system - self._concurrency)
            self._changed = now
        self._in_system += change

    def _take(self) -> Batch | None:
        """The next batch: small jobs and a big job's chunks take turns."""
        if self._big and (self._big_turn or not self._queue):
            self._big_turn = False
            batch = self._take_chunk()
            if batch is not None or not self._queue:
                return batch
        self._big_turn = True
        jobs = self._take_jobs()
        if jobs:
            return Batch(jobs, sum(job.rows for job in jobs))
        return self._take_chunk() if self._big else None

    def _take_chunk(self) -> Batch | None:
        """The next ``chunk_rows`` rows of the oldest big job still wanted."""
        big = self._big
        while big and big[0].future.done():  # cancelled: the client is gone
            job = big.popleft()
            self._rows -= job.rows - job.taken
            self._track(self.clock.now(), -1)
        if not big:
            return None
        job = big[0]
        start = job.taken
        stop = min(job.rows, start + self.chunk_rows)
        job.taken = stop
        if stop == job.rows:
            big.popleft()
        self._rows -= stop - start
        if self.metrics is not None:
            self.metrics.batch_taken(stop - start, self.clock.now() - job.enqueued, self._rows)
        return Batch([job], stop - start, (start, stop))

    def _take_jobs(self) -> list[Job]:
        """Queued small jobs in order, skipping abandoned ones, up to the batch size."""
        jobs: list[Job] = []
        rows = 0
        queue = self._queue
        while queue:
            job = queue[0]
            if job.future.done():  # cancelled: the client is gone
                queue.popleft()
                self._rows -= job.rows
                self._track(self.clock.now(), -1)
                continue
            if jobs and (not self.coalesce or rows + job.rows > self.max_batch_size):
                break
            queue.popleft()
            jobs.append(job)
            rows += job.rows
        self._rows -= rows
        if jobs:
            self._recent.append(len(jobs))
        if jobs and self.metrics is not None:
            self.metrics.batch_taken(rows, self.clock.now() - jobs[0].enqueued, self._rows)
        return jobs

    # -- running ---------------------------------------------------------------------------

    def _call(self, batch: Batch) -> Any:
        """One model call for ``batch``; raises if it fails or answers the wrong count."""
        jobs = batch.jobs
        if batch.chunk is not None:
            data = rows_of(jobs[0].data, *batch.chunk)
        elif len(jobs) == 1:
            data = jobs[0].data
        else:
            data = self.model.concat([j.data for j in jobs])
        results = self.model.predict(data)
        if (self.coalesce or batch.chunk is not None) and len(results) != batch.rows:
            raise ModelError(
                f"the model returned {len(results)} results for {batch.rows} rows; "
                "a batchable model must return one result per row, in order"
            )
        return results

    def _run_inline(self, batch: Batch) -> None:
        started = self.clock.now()
        try:
            results = self._call(batch)
        except Exception as exc:
            halves = self._failed(batch, started, exc)
        else:
            halves = self._settled(batch, started, results)
        for half in halves:
            self._run_inline(half)

    async def _run_in_executor(self, batch: Batch) -> None:
        try:
            await self._call_in_executor(batch)
        finally:
            self._running = None
            self._next()

    async def _call_in_executor(self, batch: Batch) -> None:
        started = self.clock.now()
        try:
            if self.deadlines is None:
                results = await self.loop.run_in_executor(self.executor, self._call, batch)
            else:
                results = await self.deadlines.call(self._call, batch)
        except Exception as exc:
            halves = self._failed(batch, started, exc)
        else:
            halves = self._settled(batch, started, results)
        for half in halves:
            await self._call_in_executor(half)

    def _settled(self, batch: Batch, started: float, results: list[Any]) -> list[Batch]:
        self._call_seconds = self.clock.now() - started
        if batch.chunk is not None:
            self._settle_chunk(batch.jobs[0], batch.chunk, results)
        else:
            self._settle(batch.jobs, results)
        return []

    def _failed(self, batch: Batch, started: float, exc: Exception) -> list[Batch]:
        """Fail a lone job; split a batch in two to retry, so the bad request fails alone."""
        self._call_seconds = self.clock.now() - started
        jobs = batch.jobs
        if len(jobs) == 1:
            self._settle_error(jobs[0], exc)
            return []
        middle = len(jobs) // 2
        return [Batch(half, sum(j.rows for j in half)) for half in (jobs[:middle], jobs[middle:])]

    def _settle_chunk(self, job: Job, chunk: tuple[int, int], results: list[Any]) -> None:
        """A big job's chunk answered: keep its results; the last chunk answers the job."""
        job.parts.append(results)
        if chunk[1] == job.rows:
            parts, job.parts = job.parts, []
            if not job.future.done():
                job.future.set_result([row for part in parts for row in part])
            self._track(self.clock.now(), -1)

    def _settle(self, jobs: list[Job], results: Any) -> None:
        now = self.clock.now()
        if not self.coalesce:
            job = jobs[0]
            if not job.future.done():
                job.future.set_result(results)
            self._track(now, -1)
            return
        start = 0
        for job in jobs:
            end = start + job.rows
            if not job.future.done():
                job.future.set_result(results[start:end])
            start = end
        self._track(now, -len(jobs))

    def _settle_error(self, job: Job, exc: Exception) -> None:
        if not job.future.done():
            job.future.set_exception(exc)
        if job.taken and job.taken < job.rows:  # a big job that fails in a chunk: no more
            with_rest = job.rows - job.taken
            if job in self._big:
                self._big.remove(job)
                self._rows -= with_rest
        job.parts = []
        self._track(self.clock.now(), -1)
