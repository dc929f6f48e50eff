"""Payload logging in a serving worker: sample, buffer, write in batches, never block.

On the request path a sampled request costs one ``random()``, two clock reads and one
``list.append`` of references (:meth:`Monitor.sampled`, :meth:`Monitor.record`); an
unsampled one, the ``random()``; monitoring off, one ``is None`` test in the service.
Everything else runs in a background task on the worker's event loop, once a second:

1. the requests captured since the last tick become log lines (:mod:`.records`), in
   slices of ``SLICE`` with a yield to the loop between slices, and feed the live
   signals (:mod:`.live`);
2. the lines go through an incremental gzip compressor into the current *part*;
3. a part older than ``monitor_interval`` seconds (or holding ``monitor_max_records``
   requests) is written as one file by a daemon thread, one write at a time: a complete
   temporary file renamed into place on a local store, one blob upload on Azure (both
   all-or-nothing: a worker killed mid-write leaves the file complete or absent).

Memory is bounded: at most ``monitor_max_records`` requests wait for the next tick and at
most as many sit in the part; while a write is slow or the store is down, newer requests
are dropped and counted (``shipml_monitor_records_dropped_total{reason="buffer_full"}``),
and a write that fails loses its part, counted too (``reason="write_failed"``). A request
never waits for the store and never fails because of it. At shutdown (SIGTERM) the worker
writes what it holds, waiting at most ``STOP_TIMEOUT`` seconds; a worker killed outright
loses what it held: at most one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import zlib
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from shipml.errors import ShipmlError
from shipml.monitoring.live import LiveSignals
from shipml.monitoring.records import BODY, RECORDS, TABLE, Captured, Identity, Lines
from shipml.serving.settings import ServeSettings
from shipml.store.backend import Backend, LocalBackend, open_backend
from shipml.store.cache import LocalModel
from shipml.store.disk import explain
from shipml.store.paths import monitoring_key, part_key
from shipml.store.reference import parse_reference

log = logging.getLogger("shipml")
TICK_SECONDS = 1.0
SLICE = 256
STOP_TIMEOUT = 10.0
COMPRESS_LEVEL = 1  # fastest: the log is written once and read rarely
WARN_EVERY_SECONDS = 60.0
MONITOR_HINT = "point SHIPML_MONITOR_STORE at another store"
__all__ = ["BODY", "RECORDS", "TABLE", "Monitor", "Sink"]


class Sink:
    """Writes one part of ``name:version``'s payload log through the store's backend."""

    def __init__(self, backend: Backend, name: str, version: int) -> None:
        self.backend, self.name, self.version = backend, name, version
        self.url = backend.url

    def write(self, day: str, part: str, data: bytes) -> None:
        """Write one file, complete or not at all; a local disk's failure (full, read-only,
        no permission) becomes the store's one-line explanation."""
        try:
            self.backend.write(part_key(self.name, self.version, day, part), data)
        except OSError as exc:
            if isinstance(self.backend, LocalBackend):
                raise explain(exc, "write the payload log", self.url, MONITOR_HINT) from None
            raise


class Part:
    """One file being filled: gzip'd lines, its day and name fixed by its first request."""

    def __init__(self, wall: float, token: str, sequence: int) -> None:
        moment = time.gmtime(wall)
        self.day = time.strftime("%Y-%m-%d", moment)
        self.name = f"{time.strftime('%H%M%S', moment)}-{token}-{sequence:06d}.jsonl.gz"
        self.opened = time.monotonic()
        self.count = 0
        self._compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)  # gzip
        self._chunks: list[bytes] = []

    def add(self, data: bytes, count: int) -> None:
        self._chunks.append(self._compressor.compress(data))
        self.count += count

    def finish(self) -> bytes:
        self._chunks.append(self._compressor.flush())
        return b"".join(self._chunks)


class Monitor:
    """One worker's payload log and live signals (module docstring)."""

    def __init__(
        self,
        lines: Lines,
        live: LiveSignals,
        sink: Sink | None,
        *,
        rate: float = 1.0,
        interval: float = 60.0,
        max_records: int = 100_000,
    ) -> None:
        self.lines, self.live, self.sink = lines, live, sink
        self.rate = rate
        self.interval = interval
        self.max_records = max_records
        self._pending: list[Captured] = []
        self._full = 0  # requests dropped on arrival since the last tick
        self._part: Part | None = None
        self._writing: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._token = os.urandom(4).hex()  # this worker's files, unique across hosts
        self._sequence = 0
        self._warned = 0.0

    # -- the request path --------------------------------------------------------------

    def sampled(self) -> float | None:
        """The start time of a request to log, or None for one that is not sampled."""
        if self.rate < 1.0 and random.random() >= self.rate:
            return None
        return time.perf_counter()

    def record(self, kind: str, request_id: str, started: float, given: Any, answer: Any) -> None:
        """Keep an answered request for the next tick (references only: no copy, no I/O)."""
        pending = self._pending
        if len(pending) >= self.max_records:
            self._full += 1
            return
        pending.append((kind, request_id, started, time.perf_counter(), given, answer))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    # -- the background task -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self._drain()
                self._rotate(force=False)
            except Exception:  # never let one bad tick stop the logging
                log.exception("monitoring: a batch of records could not be prepared")

    async def _drain(self, cooperative: bool = True) -> None:
        pending, self._pending = self._pending, []
        if self._full:
            self.live.dropped.labels("buffer_full").inc(self._full)
            self._full = 0
        offset = time.time() - time.perf_counter()
        for start in range(0, len(pending), SLICE):
            self._add(pending[start : start + SLICE], offset)
            if cooperative:
                await asyncio.sleep(0)  # let requests through between slices
        self.live.flush()

    def _add(self, captured: list[Captured], offset: float) -> None:
        encoded: list[bytes] = []
        build, observe = self.lines.build, self.live.observe
        for item in captured:
            line, inputs, outputs = build(item, offset)
            observe(inputs, outputs)
            encoded.append(orjson.dumps(line, default=str, option=orjson.OPT_SERIALIZE_NUMPY))
        if self.sink is None:
            self.live.dropped.labels("write_failed").inc(len(encoded))
            return
        part = self._part
        if part is None:
            part = self._part = Part(captured[0][2] + offset, self._token, self._next())
        room = self.max_records - part.count
        if room < len(encoded):
            self.live.dropped.labels("buffer_full").inc(len(encoded) - max(room, 0))
            encoded = encoded[: max(room, 0)]
        if encoded:
            part.add(b"\n".join(encoded) + b"\n", len(encoded))

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _rotate(self, force: bool) -> asyncio.Future[None] | None:
        part = self._part
        if part is None or (self._writing is not None and not self._writing.done()):
            return None
        young = time.monotonic() - part.opened < self.interval
        if not force and part.count < self.max_records and young:
            return None
        self._part = None
        if self.sink is None:  # parts are only opened with a sink (see record)
            return None
        self._writing = self._write(part, self.sink)
        return self._writing

    def _write(self, part: Part, sink: Sink) -> asyncio.Future[None]:
        """Write ``part`` on a daemon thread (a store that hangs never holds up the
        worker's exit); the future resolves on the loop when the write is over."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        data = part.finish()

        def work() -> None:
            failure: BaseException | None = None
            try:
                sink.write(part.day, part.name, data)
            except BaseException as exc:
                failure = exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to tell
                loop.call_soon_threadsafe(self._written, done, part, failure)

        threading.Thread(target=work, name="shipml-monitor", daemon=True).start()
        return done

    def _written(
        self, done: asyncio.Future[None], part: Part, failure: BaseException | None
    ) -> None:
        if failure is None:
            self.live.written.inc(part.count)
        else:
            self.live.dropped.labels("write_failed").inc(part.count)
            self.live.write_errors.inc()
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY_SECONDS:
                self._warned = now
                reason = getattr(failure, "message", None) or repr(failure)
                log.warning(
                    "monitoring: could not write %d logged requests to %s (%s); requests "
                    "are still answered, logged ones are dropped and counted in /metrics",
                    part.count,
                    self.sink.url if self.sink else "the store",
                    reason[:300],
                )
        if not done.done():
            done.set_result(None)

    async def close(self) -> None:
        """Write what is held (at shutdown), waiting at most ``STOP_TIMEOUT`` seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        deadline = time.monotonic() + STOP_TIMEOUT
        try:
            await self._drain(cooperative=False)
            for _ in range(2):  # a write still running, then the last part
                if self._writing is not None and not self._writing.done():
                    left = max(0.0, deadline - time.monotonic())
                    await asyncio.wait_for(asyncio.shield(self._writing), left)
                if self._rotate(force=True) is None:
                    break
        except TimeoutError:
            log.warning("monitoring: the last logged requests were not written in time")


def monitor_for(
    settings: ServeSettings, model: LocalModel, scorer: Any, registry: CollectorRegistry
) -> Monitor | None:
    """The worker's monitor for ``model`` (None when monitoring is off).

    A store that cannot be opened does not stop the service: the error is logged once
    and every logged request is dropped and counted, as when the store is down.
    """
    if not settings.monitor:
        return None
    if settings.model and not settings.model_dir and parse_reference(settings.model).path:
        log.error(
            "monitoring is on but %s is a model file, not a version of a store: serve it "
            "by name (shipml.save_model, then shipml serve NAME) to log its requests",
            settings.model,
        )
        return None
    manifest = model.manifest
    identity = Identity(manifest.name, manifest.version, model.digest)
    schema = manifest.input_schema or getattr(scorer, "input_schema", None) or {}
    names = tuple(schema.get("required") or schema.get("properties") or ())
    live = LiveSignals(
        registry, manifest.data.get("profile"), names, getattr(scorer, "classes", None)
    )
    key = os.environ.get("SHIPML_MONITOR_HASH_KEY")
    lines = Lines(
        identity,
        names,
        settings.monitor_redact,
        settings.monitor_hash,
        key.encode() if key else None,
    )
    url = settings.monitor_store or settings.store or os.environ.get("SHIPML_STORE")
    sink = None
    if not url:
        log.error(
            "monitoring is on but there is no store to write to: set SHIPML_MONITOR_STORE "
            "(or serve the model from a store); logged requests are dropped"
        )
    else:
        try:
            sink = Sink(open_backend(url), manifest.name, manifest.version)
        except ShipmlError as exc:
            log.error(
                "monitoring: cannot open the store %s: %s; logged requests are dropped",
                url,
                exc.message,
            )
    if sink is not None:
        log.info(
            "monitoring %s: logging %g of requests to %s/%s every %gs",
            manifest.ref,
            settings.monitor_sample_rate,
            sink.url,
            monitoring_key(manifest.name, manifest.version),
            settings.monitor_interval,
        )
    return Monitor(
        lines,
        live,
        sink,
        rate=settings.monitor_sample_rate,
        interval=settings.monitor_interval,
        max_records=settings.monitor_max_records,
    )
