"""Prometheus metrics for the service.

With several workers, every worker writes its numbers to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by :mod:`shipml.serving.server` before the workers
fork) and ``/metrics`` adds them up, so a scrape sees the whole service, not one worker.

Each write to those files costs about a microsecond (a lock and an mmap store; the
``getpid`` system call prometheus-client adds is replaced by a cached pid below), so the
two per-request numbers that need no distribution, the request count and the in-flight
gauge, are kept in plain Python and written out once a second (and on every scrape of
this worker): a scrape may see another worker's counts up to a second late. The latency
histogram is observed per request; batch metrics once per model call.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _ProcessId:
    """This process's id without a system call, renewed in the child after every fork."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.pid = os.getpid()

    def __call__(self) -> int:
        return self.pid


@cache
def _values_without_getpid() -> None:
    """Make new multiprocess values identify the process by a cached pid.

    prometheus-client checks the process id on every write to a multiprocess value (to
    notice a fork) by calling ``os.getpid()``, a system call since glibc 2.25: py-spy put
    ``getpid`` at 10-16 % of a worker's busy time at c=32. ``MultiProcessValue`` takes
    the function to call as its ``process_identifier``; a pid cached per process and
    renewed after every fork gives the same answers without the system call.
    """
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=_ProcessId()
    )


class Metrics:
    """The service's instruments, registered once per process."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        # Outside multiprocess mode ``multiprocess_mode`` is ignored; inside it says how
        # the workers' values add up.
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.multiprocess:
            _values_without_getpid()
        self.registry = CollectorRegistry()
        self.in_flight_now = 0  # requests being answered by this process
        self._depth = 0  # the queue depth last written
        self._answered: dict[tuple[str, str, int], int] = {}
        self._refused: dict[str, int] = {}
        self.open_connections: Callable[[], int] | None = None  # the worker's, when serving
        self._timers: dict[str, Any] = {}
        self._ticker: asyncio.TimerHandle | None = None
        registry = self.registry
        self.requests = Counter(
            "shipml_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "shipml_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "shipml_batch_size", "Rows per model call", buckets=BATCH_BUCKETS, registry=registry
        )
        self.queue_wait = Histogram(
            "shipml_queue_wait_seconds",
            "Time the oldest request of each model call waited in the queue",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "shipml_queue_depth",
            "Rows waiting for the model (sampled at each model call)",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.in_flight = Gauge(
            "shipml_in_flight_requests",
            "Requests being answered",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.refusals = Counter(
            "shipml_http_refused",
            "Connections refused or closed by the HTTP front's limits (docs/security.md)",
            ["reason"],
            registry=registry,
        )
        self.connections = Gauge(
            "shipml_open_connections",
            "HTTP connections open (sampled once a second)",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.model_info = Gauge(
            "shipml_model_info",
            "The model being served (value 1)",
            ["name", "version", "digest"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.ready = Gauge(
            "shipml_model_ready",
            "1 once the model is loaded and warmed",
            multiprocess_mode="livemin",
            registry=registry,
        )

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered: count it (written out by :meth:`flush`), time it."""
        key = (route, method, status)
        self._answered[key] = self._answered.get(key, 0) + 1
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = self.latency.labels(route)
        timer.observe(seconds)

    def refused(self, reason: str, count: int = 1) -> None:
        """Connections the HTTP front refused (serving/front.py), written by :meth:`flush`."""
        self._refused[reason] = self._refused.get(reason, 0) + count

    def flush(self) -> None:
        """Write the in-process counts out to the Prometheus values."""
        answered, self._answered = self._answered, {}
        for (route, method, status), count in answered.items():
            self.requests.labels(route, method, str(status)).inc(count)
        refused, self._refused = self._refused, {}
        for reason, count in refused.items():
            self.refusals.labels(reason).inc(count)
        self.in_flight.set(self.in_flight_now)
        if self.open_connections is not None:
            self.connections.set(self.open_connections())

    def start(self, every: float = 1.0) -> None:
        """Flush every ``every`` seconds on the running loop until :meth:`stop`."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._ticker = loop.call_later(every, tick)

        self._ticker = loop.call_later(every, tick)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.flush()

    def batch_taken(self, rows: int, waited: float, depth: int) -> None:
        """One model call: its rows, how long its oldest job waited, rows left queued."""
        self.batch_size.observe(rows)
        self.queue_wait.observe(waited)
        if depth != self._depth:  # mostly 0, and each write costs
            self._depth = depth
            self.queue_depth.set(depth)

    def render(self) -> bytes:
        self.flush()
        if self.multiprocess:
            from prometheus_client import multiprocess  # on use: multi-worker only

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
