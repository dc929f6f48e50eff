"""Reading a version's payload log back from the store, for a time window, in bounded memory.

Files are listed under ``monitoring/<name>/<N>/date=YYYY-MM-DD/`` for the days the
window touches; a name that is not a part (a writer's temporary file, anything put there
by hand) is ignored. Each file is read whole and decompressed; a file that cannot be
(damaged, truncated by something other than shipml) is skipped and named in the report,
and the rest is read. Every request is counted (volume and latency over time); the
records compared with the training data are a uniform random sample of at most
``MAX_ROWS`` (reservoir sampling), so a month of traffic reads in the memory of a day's.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shipml.errors import ShipmlError
from shipml.monitoring.records import parse_line
from shipml.store.backend import Backend
from shipml.store.paths import DAY_FOLDER, PART_NAME, day_folder, monitoring_key
from shipml.store.store import Store

MAX_ROWS = 50_000
LATENCIES_PER_BUCKET = 2_000
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NICE_BUCKETS = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400)


class WindowError(ShipmlError):
    """A time window that cannot be read."""


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    def days(self) -> list[str]:
        """The day folders to read: a file sits in the day of its first request, so the
        day before the window may hold requests made after midnight."""
        day, last = self.start.date() - dt.timedelta(days=1), self.end.date()
        days = []
        while day <= last:
            days.append(day.isoformat())
            day += dt.timedelta(days=1)
        return days

    def stamps(self) -> tuple[str, str]:
        """The bounds as log lines write time (compared as strings)."""
        return _stamp(self.start), _stamp(self.end)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def window(
    since: str | None, start: str | None, end: str | None, now: dt.datetime | None = None
) -> Window:
    """``--since 24h`` (s, m, h, d, w) or ``--from … [--to …]`` (ISO dates or times, UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    if start is not None or end is not None:
        if since is not None:
            raise WindowError("give either --since or --from/--to, not both")
        first = _moment(start, "--from") if start else now - dt.timedelta(days=1)
        last = _moment(end, "--to", end_of_day=True) if end else now
    else:
        found = DURATION.fullmatch((since or "24h").strip().lower())
        if found is None:
            raise WindowError(
                f"--since {since!r} is not a duration: use a number and s, m, h, d or w, "
                "e.g. --since 24h or --since 7d"
            )
        first, last = now - dt.timedelta(seconds=float(found[1]) * UNITS[found[2]]), now
    if first >= last:
        raise WindowError(
            f"the window is empty: {first.isoformat()} is not before {last.isoformat()}"
        )
    return Window(first, last)


def _moment(text: str, flag: str, end_of_day: bool = False) -> dt.datetime:
    try:
        if len(text) == 10:  # a day: from its start, or to its end
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            return day + dt.timedelta(days=1, microseconds=-1) if end_of_day else day
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(
            f"{flag} {text!r} is not a date or time: use e.g. 2026-11-30 or 2026-11-30T14:00"
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@dataclass
class LiveData:
    """What the window holds: counts of everything, a sample of records."""

    requests: int = 0
    records: int = 0
    files: int = 0
    damaged: list[str] = field(default_factory=list)
    first: str | None = None
    last: str | None = None
    # (time, input record, answer) for at most MAX_ROWS records, uniformly drawn
    rows: list[tuple[str, Any, Any]] = field(default_factory=list)
    # requests per ``grain`` seconds (keyed by the bucket's start), and (time, latency)
    # of at most MAX_ROWS requests, uniformly drawn
    grain: int = 60
    volume: Counter[str] = field(default_factory=Counter)
    latencies: list[tuple[str, float]] = field(default_factory=list)
    _seen: int = 0
    _timed: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def add(self, line: dict[str, Any]) -> None:
        moment = line["time"]
        self.requests += 1
        self.volume[bucket_of(moment, self.grain)] += 1
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last
        latency = line.get("latency_ms")
        if isinstance(latency, int | float):
            self._timed += 1
            if len(self.latencies) < MAX_ROWS:
                self.latencies.append((moment, float(latency)))
            else:
                slot = self._rng.randrange(self._timed)
                if slot < MAX_ROWS:
                    self.latencies[slot] = (moment, float(latency))
        inputs = line.get("inputs") or []
        outputs = line.get("outputs") or []
        paired = len(outputs) == len(inputs)
        for i, record in enumerate(inputs):
            self.records += 1
            self._keep((moment, record, outputs[i] if paired else None))
        if not inputs:  # a request whose body was not logged: keep its answers
            for answer in outputs:
                self._keep((moment, None, answer))

    def _keep(self, row: tuple[str, Any, Any]) -> None:
        self._seen += 1
        if len(self.rows) < MAX_ROWS:
            self.rows.append(row)
            return
        slot = self._rng.randrange(self._seen)
        if slot < MAX_ROWS:
            self.rows[slot] = row


def part_keys(
    backend: Backend, name: str, version: int, days: list[str] | None = None
) -> list[str]:
    """The keys of the log's files (of ``days`` only, when given), oldest first."""
    base = monitoring_key(name, version)
    folders = [entry for entry in backend.listdir(base) if DAY_FOLDER.fullmatch(entry)]
    if days is not None:
        wanted = {day_folder(day) for day in days}
        folders = [f for f in folders if f in wanted]
    keys = []
    for folder in sorted(folders):
        for part in backend.listdir(f"{base}/{folder}"):
            if PART_NAME.fullmatch(part):
                keys.append(f"{base}/{folder}/{part}")
    return keys


def read(backend: Backend, name: str, version: int, span: Window) -> LiveData:
    """Every logged request of ``name:version`` within ``span``."""
    seconds = (span.end - span.start).total_seconds()
    data = LiveData(grain=next((n for n in NICE_BUCKETS if seconds / n <= 2000), 86400))
    low, high = span.stamps()
    for key in part_keys(backend, name, version, span.days()):
        try:
            lines = list(_lines(backend.read(key)))
        except (OSError, EOFError, zlib.error) as exc:
            data.damaged.append(f"{key.rsplit('/', 1)[-1]} ({type(exc).__name__}: {exc})")
            continue
        data.files += 1
        for line in lines:
            if low <= line["time"] <= high:
                data.add(line)
    data.latencies.sort()
    return data


def _lines(blob: bytes) -> Iterator[dict[str, Any]]:
    for raw in gzip.decompress(blob).splitlines():
        line = parse_line(raw) if raw else None
        if line is not None:
            yield line


def remove(backend: Backend, name: str, version: int) -> int:
    """Delete ``name:version``'s payload log; returns how many files were deleted."""
    keys = part_keys(backend, name, version)
    for key in keys:
        backend.delete(key)
    return len(keys)


def remove_log(store: Store, name: str, version: int, keep: bool) -> tuple[str, int]:
    """After ``name:version`` is removed: delete its payload log, or with ``keep`` count
    what stays. Returns where the log is and how many files were deleted or kept."""
    log = f"{store.url}/{monitoring_key(name, version)}"
    try:
        if keep:
            return log, len(part_keys(store.backend, name, version))
        return log, remove(store.backend, name, version)
    except (OSError, ShipmlError) as exc:
        reason = exc.message if isinstance(exc, ShipmlError) else str(exc)
        raise ShipmlError(
            f"removed {name}:{version} but not its payload log in {log} ({reason}); "
            "delete that folder by hand"
        ) from None


def bucket_seconds(first: str, last: str, wanted: int = 40) -> int:
    """A round bucket size that cuts ``first``..``last`` into about ``wanted`` buckets."""
    span = (_parse(last) - _parse(first)).total_seconds()
    for size in NICE_BUCKETS:
        if span / size <= wanted:
            return size
    return NICE_BUCKETS[-1]


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def bucket_of(stamp: str, size: int) -> str:
    moment = _parse(stamp)
    epoch = int(moment.timestamp()) // size * size
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
