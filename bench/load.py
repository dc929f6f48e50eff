"""Drive a server with wrk (1 thread, keep-alive, one row per POST) and watch its process
tree meanwhile: the figures of one row of the table at one concurrency.

CPU is utime + stime of every process of the tree, sampled every half second (a worker
that a server restarts mid-run is counted from its birth); RSS is the largest sum over the
tree seen during the run, of each process's proportional set size (shared pages split
between the processes sharing them).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.server import ProcessSample, Server
from bench.workspace import BENCH

SCRIPT = BENCH / "wrk" / "post.lua"
WRK_TIMEOUT = "5s"  # a request slower than this counts as an error
SAMPLE_EVERY = 0.5


class LoadError(Exception):
    """wrk failed or printed no result."""


@dataclass(frozen=True)
class Measurement:
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # connect, read, write, status (non-2xx/3xx), timeout
    memory_mb: float  # PSS (bench/server.py)
    cpu_us_per_request: float
    bytes_per_response: float  # headers + body, averaged: a sanity check on the answers
    cpu_split: list[dict[str, Any]] = field(default_factory=list)  # per process, busiest first

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Watcher:
    """Samples the server's tree on a thread until stopped."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.first: dict[int, float] = {}
        self.last: dict[int, ProcessSample] = {}
        self.memory_peak = 0
        self.done = threading.Event()
        self.sample()
        self.first = {pid: sample.cpu_seconds for pid, sample in self.last.items()}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> None:
        tree = self.server.tree()
        self.memory_peak = max(self.memory_peak, sum(s.memory_bytes for s in tree))
        for sample in tree:
            self.last[sample.pid] = sample

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY):
            self.sample()

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=10)
        self.sample()

    def cpu(self) -> list[dict[str, Any]]:
        rows = [
            {
                "pid": pid,
                "name": sample.name,
                "cpu_seconds": round(sample.cpu_seconds - self.first.get(pid, 0.0), 3),
            }
            for pid, sample in self.last.items()
        ]
        return sorted(rows, key=lambda row: -row["cpu_seconds"])


def drive(server: Server, body: Path, connections: int, seconds: float) -> Measurement:
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
        "--timeout", WRK_TIMEOUT, "-s", str(SCRIPT), server.launch.url,
    ]  # fmt: skip
    with Watcher(server) as watcher:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            env={**os.environ, "BENCH_BODY": str(body)},
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise LoadError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout}")
    raw = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    split = watcher.cpu()
    cpu = sum(row["cpu_seconds"] for row in split)
    requests = int(raw["requests"])
    elapsed = raw["duration_us"] / 1e6
    return Measurement(
        connections=connections,
        seconds=round(elapsed, 2),
        requests=requests,
        rps=round(requests / elapsed, 1) if elapsed else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors={key: int(raw[key]) for key in ("connect", "read", "write", "status", "timeout")},
        memory_mb=round(watcher.memory_peak / 2**20, 1),
        cpu_us_per_request=round(cpu / requests * 1e6, 1) if requests else 0.0,
        bytes_per_response=round(raw["bytes"] / requests, 1) if requests else 0.0,
        cpu_split=[row for row in split if row["cpu_seconds"] > 0][:6],
    )
