"""The payload log of one worker: lines, files, redaction, bounded memory, a failing store."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from shipml.errors import IntegrityError, ShipmlError
from shipml.monitoring import reading
from shipml.monitoring.live import LiveSignals
from shipml.monitoring.recorder import BODY, RECORDS, TABLE, Monitor, Sink
from shipml.monitoring.records import Identity, Lines
from shipml.store.backend import LocalBackend
from shipml.store.paths import part_key

NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ANSWER = {
    "label": "setosa",
    "probabilities": {"setosa": 0.9, "versicolor": 0.07, "virginica": 0.03},
}
PROFILE = {
    "fields": {
        **{n: {"kind": "number", "min": 0.1, "max": 8.0} for n in NAMES},
    }
}
IDENTITY = Identity("iris", 3, "sha256:" + "b" * 64)


def monitor(store: Path | None, registry: CollectorRegistry, **options: Any) -> Monitor:
    live = LiveSignals(registry, PROFILE, NAMES, ["setosa", "versicolor", "virginica"])
    lines = Lines(IDENTITY, NAMES, options.pop("redact", ()), options.pop("hashed", ()))
    sink = Sink(LocalBackend(store), "iris", 3) if store is not None else None
    return Monitor(lines, live, sink, **options)


def logged(store: Path) -> list[dict[str, Any]]:
    backend = LocalBackend(store)
    lines = []
    for key in reading.part_keys(backend, "iris", 3):
        lines += [orjson.loads(x) for x in gzip.decompress(backend.read(key)).splitlines()]
    return lines


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_every_request_shape_becomes_records_in_complete_files(tmp_path: Path) -> None:
    import numpy as np

    registry = CollectorRegistry()
    worker = monitor(tmp_path, registry, interval=60)

    async def serve() -> None:
        rows = {"inputs": [[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2]]}
        for kind, given, answer in (
            (RECORDS, RECORD, ANSWER),
            (RECORDS, [RECORD, {**RECORD, "petal_width": 9.5}], [ANSWER, ANSWER]),
            (RECORDS, rows, [ANSWER, ANSWER]),
            (TABLE, np.array([[6.7, 3.0, 5.2, 2.3]]), [ANSWER]),
            (BODY, (b'{"text": "fine"}', 200, "application/json", b'{"score": 0.9}'), None),
            (BODY, (b"not json", 200, "text/plain", b"ok"), None),
        ):
            started = worker.sampled()
            assert started is not None
            worker.record(kind, "req-1", started, given, answer)
        await worker.close()  # writes what is held, as at SIGTERM

    asyncio.run(serve())
    lines = logged(tmp_path)
    assert [len(line["inputs"] or []) for line in lines] == [1, 2, 2, 1, 1, 0]
    first = lines[0]
    assert first["model"] == "iris" and first["version"] == 3 and first["digest"] == IDENTITY.digest
    assert first["request_id"] == "req-1" and first["latency_ms"] >= 0
    assert first["time"].endswith("Z") and len(first["time"]) == 24
    assert lines[2]["inputs"][0] == dict(zip(NAMES, [6.7, 3.0, 5.2, 2.3], strict=True))
    assert lines[3]["inputs"][0]["petal_length"] == 5.2
    assert lines[4]["inputs"] == [{"text": "fine"}] and lines[4]["outputs"] == [{"score": 0.9}]
    assert lines[5]["inputs"] is None and lines[5]["body_bytes"] == 8
    assert value(registry, "shipml_monitor_records_written_total") == 6
    assert value(registry, "shipml_predictions_total", label="setosa") == 6
    assert value(registry, "shipml_prediction_score_count") == 7  # six answers and one score
    issue = {"field": "petal_width", "issue": "out_of_range"}
    assert value(registry, "shipml_input_issues_total", **issue) == 1
    # nothing else in the day folder: no temporary file left behind
    folder = next((tmp_path / "monitoring" / "iris" / "3").iterdir())
    assert len(list(folder.iterdir())) == 1


def test_redacted_fields_are_never_written_and_hashed_ones_are_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    worker = monitor(tmp_path, registry, redact=["sepal_width"], hashed=["sepal_length"])

    async def serve() -> None:
        started = worker.sampled()
        assert started is not None
        worker.record(RECORDS, "r", started, {**RECORD, "sepal_width": 3.14159}, ANSWER)
        await worker.close()

    asyncio.run(serve())
    (line,) = logged(tmp_path)
    assert "sepal_width" not in line["inputs"][0]
    assert line["inputs"][0]["sepal_length"] == "sha256:" + hashlib.sha256(b"5.1").hexdigest()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "monitoring").rglob("*.gz"))
    assert b"3.14159" not in gzip.decompress(raw)


def test_a_full_buffer_drops_and_counts_instead_of_growing(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    worker = monitor(tmp_path, registry, max_records=5)

    async def serve() -> None:
        for _ in range(12):
            started = worker.sampled()
            assert started is not None
            worker.record(RECORDS, "r", started, RECORD, ANSWER)
        assert len(worker._pending) == 5
        await worker.close()

    asyncio.run(serve())
    assert len(logged(tmp_path)) == 5
    assert value(registry, "shipml_monitor_records_dropped_total", reason="buffer_full") == 7


def test_a_store_that_cannot_be_written_loses_records_not_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "monitoring").write_text("a file where the log's folder should be")
    registry = CollectorRegistry()
    worker = monitor(tmp_path, registry, interval=0.1)

    async def serve() -> None:
        for _ in range(3):
            started = worker.sampled()
            assert started is not None
            worker.record(RECORDS, "r", started, RECORD, ANSWER)
        deadline = time.monotonic() + 10
        while value(registry, "shipml_monitor_write_errors_total") < 1:  # written, and failed
            assert time.monotonic() < deadline, "the part was never written"
            await asyncio.sleep(0.02)
        assert value(registry, "shipml_monitor_write_errors_total") == 1
        await worker.close()

    asyncio.run(serve())
    assert value(registry, "shipml_monitor_records_dropped_total", reason="write_failed") == 3
    assert value(registry, "shipml_monitor_records_written_total") == 0
    assert value(registry, "shipml_monitor_requests_total") == 3  # the live signals still count
    (warning,) = [r.getMessage() for r in caplog.records if "could not write" in r.getMessage()]
    assert "could not write 3 logged requests" in warning
    assert "cannot write the payload log in" in warning  # the store's one-line explanation


def test_sampling_keeps_about_the_rate() -> None:
    worker = monitor(None, CollectorRegistry(), rate=0.1)
    kept = sum(worker.sampled() is not None for _ in range(20_000))
    assert 1700 < kept < 2300


def test_log_keys_are_checked_like_every_store_key() -> None:
    assert part_key("iris", 3, "2026-11-30", "101500-0a1b2c3d-000001.jsonl.gz") == (
        "monitoring/iris/3/date=2026-11-30/101500-0a1b2c3d-000001.jsonl.gz"
    )
    for bad in (("../x", 3, "2026-11-30"), ("iris", 0, "2026-11-30"), ("iris", 3, "2026-13-40")):
        with pytest.raises(ShipmlError):
            part_key(*bad, "101500-0a1b2c3d-000001.jsonl.gz")
    with pytest.raises(IntegrityError):
        part_key("iris", 3, "2026-11-30", "../../manifest.json")


def test_the_reader_skips_damaged_and_foreign_files(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    good = gzip.compress(orjson.dumps({"time": "2026-11-30T10:00:00.000Z", "inputs": [RECORD]}))
    backend.write(part_key("iris", 3, "2026-11-30", "100000-0a1b2c3d-000001.jsonl.gz"), good)
    backend.write(part_key("iris", 3, "2026-11-30", "100001-0a1b2c3d-000002.jsonl.gz"), good[:20])
    folder = tmp_path / "monitoring" / "iris" / "3" / "date=2026-11-30"
    (folder / ".tmp-0123456789abcdef").write_bytes(good[:10])  # a writer killed mid-write
    (folder / "notes.txt").write_text("not a log file")
    span = reading.window(None, "2026-11-30", "2026-11-30")
    data = reading.read(backend, "iris", 3, span)
    assert data.files == 1 and data.requests == 1 and data.rows[0][1] == RECORD
    assert len(data.damaged) == 1 and data.damaged[0].startswith("100001-")
    assert reading.remove(backend, "iris", 3) == 2
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-0123456789abcdef", "notes.txt"]


def test_windows() -> None:
    span = reading.window("90m", None, None)
    assert (span.end - span.start).total_seconds() == 5400
    days = reading.window(None, "2026-11-29", "2026-11-30").days()
    assert days == ["2026-11-28", "2026-11-29", "2026-11-30"]  # a file begun before midnight
    for bad in (
        ("soon", None, None),
        ("1h", "2026-11-29", None),
        (None, "2026-11-30", "2026-11-01"),
    ):
        with pytest.raises(reading.WindowError):
            reading.window(*bad)
