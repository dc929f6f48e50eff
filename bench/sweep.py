"""The measurement of one server on one model (PEERS.md's method): start it, wait until it
answers the check record correctly, warm it up at c=32, measure c=1 then c=32, stop it.

A server that fails to start or answers wrongly becomes a "failed" row with the reason;
the sweep goes on with the next one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import LoadError, Measurement, drive
from bench.peers import ModelInfo, Peer
from bench.profile import Recording
from bench.server import Server, ServerError
from bench.workspace import Workspace, free_port

PROFILE_SECONDS = 8.0  # ~800 busy samples per worker: enough for shares of a few %


@dataclass(frozen=True)
class Durations:
    warmup: float  # seconds at c=32, not recorded
    c1: float
    c32: float


@dataclass
class Row:
    server: str
    title: str
    kind: str
    model: str
    status: str  # ok | n/a | failed
    note: str = ""
    ready_seconds: float | None = None
    ready_starts: list[float] | None = None  # every start measured (--starts), the first included
    c1: Measurement | None = None
    c32: Measurement | None = None
    profile: dict[str, Any] | None = None  # bench.profile.Profile, when asked for

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["c1"] = self.c1.to_json() if self.c1 else None
        data["c32"] = self.c32.to_json() if self.c32 else None
        return data


def measure(
    ws: Workspace,
    peer: Peer,
    model: ModelInfo,
    durations: Durations,
    *,
    py_spy: Path | None = None,
    say: Any = print,
    starts: int = 1,
) -> Row:
    row = Row(peer.name, peer.title, peer.kind, model.name, "ok")
    reason = peer.unavailable(ws, model)
    if reason:
        row.status, row.note = "n/a", reason
        say(f"  n/a: {reason}")
        return row
    launch = peer.launch(ws, model, free_port())
    body = ws.work / "bodies" / f"{peer.name}-{model.name}.json"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(launch.body)
    log = ws.logs / f"serve-{peer.name}-{model.name}.log"
    server = Server(launch, log, ws.python(peer.venv).parent)
    started = time.monotonic()
    try:
        server.start()
        row.ready_seconds = round(
            server.wait_ready(lambda a: peer.answer(a, model), model.label), 2
        )
        say(f"  ready in {row.ready_seconds:.1f} s; warm-up {durations.warmup:g} s")
        drive(server, body, 32, durations.warmup)
        row.c1 = drive(server, body, 1, durations.c1)
        say(f"  c=1  {row.c1.rps:8.0f} req/s  p50 {row.c1.p50_ms:.2f} ms")
        row.c32 = drive(server, body, 32, durations.c32)
        say(
            f"  c=32 {row.c32.rps:8.0f} req/s  p99 {row.c32.p99_ms:.1f} ms  "
            f"errors {row.c1.error_count + row.c32.error_count}"
        )
        if py_spy is not None:
            name = f"{peer.name}-{model.name}"
            seconds = min(durations.c32, PROFILE_SECONDS)
            row.profile = profiled(ws, server, body, seconds, py_spy=py_spy, name=name)
            say(f"  profiled: {ws.results / f'profile-{peer.name}-{model.name}.txt'}")
        # The server must still answer right after the load (no silent breakage), and the
        # answers under load must have been as long as that one at least (wrk counts the
        # headers too): a fast row of short or empty 200s would otherwise look like a win.
        if peer.answer(server.predict(), model) != model.label:
            raise ServerError("answered wrongly after the load")
        for run in (row.c1, row.c32):
            if run.bytes_per_response < server.answer_bytes:
                raise ServerError(
                    f"answers under load averaged {run.bytes_per_response:.0f} bytes, less than "
                    f"the {server.answer_bytes}-byte body of the checked answer"
                )
    except (ServerError, LoadError, OSError, ValueError, KeyError) as exc:
        row.status = "failed"
        row.note = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        say(f"  FAILED: {exc}\n  (log: {log})")
    finally:
        server.stop()
    if row.status == "ok" and row.ready_seconds is not None and starts > 1:
        row.ready_starts = [row.ready_seconds, *restarts(ws, peer, model, starts - 1, log)]
        say(f"  start → ready: {', '.join(f'{s:.2f}' for s in row.ready_starts)} s")
    say(f"  {time.monotonic() - started:.0f} s in all")
    return row


def restarts(ws: Workspace, peer: Peer, model: ModelInfo, count: int, log: Path) -> list[float]:
    """Start the same server ``count`` more times, each to its first right answer."""
    seconds = []
    for _ in range(count):
        server = Server(peer.launch(ws, model, free_port()), log, ws.python(peer.venv).parent)
        try:
            server.start()
            seconds.append(
                round(server.wait_ready(lambda a: peer.answer(a, model), model.label), 2)
            )
        except (ServerError, OSError) as exc:
            print(f"  a restart failed: {exc}")
        finally:
            server.stop()
    return seconds


def profiled(
    ws: Workspace, server: Server, body: Path, seconds: float, *, py_spy: Path, name: str
) -> dict[str, Any] | None:
    """One more c=32 run with py-spy attached; its figures are not the table's."""
    ws.results.mkdir(parents=True, exist_ok=True)
    recording = Recording(py_spy, server.pid, seconds, ws.results / f"profile-{name}.txt")
    time.sleep(0.5)  # let py-spy attach before the load starts
    drive(server, body, 32, seconds)
    profile = recording.finish()
    return vars(profile) if profile else None
