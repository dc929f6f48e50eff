"""Prometheus metrics for the service.

With several workers, every worker writes its numbers to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by :mod:`shipml.serving.server` before the workers
fork) and ``/metrics`` adds them up, so a scrape sees the whole service, not one worker.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The service's instruments, registered once per process."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        # Outside multiprocess mode ``multiprocess_mode`` is ignored; inside it says how
        # the workers' values add up.
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
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
        self.in_flight = Gauge(
            "shipml_in_flight_requests",
            "Requests being answered",
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

    def render(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
