"""One server under test: started in its own session, proven to answer correctly, watched
through ``/proc`` (RSS and CPU of its whole process tree), then stopped with its tree.

Only one server runs at a time, so each has both cores; every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.peers import Launch

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STOP_GRACE = 15.0  # seconds a server gets to drain and exit on SIGTERM
# Seconds between tries while a server starts. It was 0.25 until 2026-11-29, which rounded
# every start up by up to that much (the ceiling's starts read 0.26 or 0.51 s); a refused
# connection costs microseconds, so trying often does not slow the start it measures.
POLL = 0.01


class ServerError(Exception):
    """The server did not start, or answered wrongly; the message carries its log tail."""


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    ppid: int
    session: int
    name: str
    cpu_seconds: float  # utime + stime so far
    # Proportional set size: each page shared by n processes counts 1/n in each, so the sum
    # over a tree is the memory it holds (RSS would count a master's pages shared with the
    # workers it forked once per process). RSS where the kernel has no smaps_rollup.
    memory_bytes: int


def read_process(pid: int) -> ProcessSample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None  # gone meanwhile
    # The name sits in parentheses and may hold spaces: split after the last ')'.
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2 :].split()
    ppid, session = int(rest[1]), int(rest[3])
    cpu = (int(rest[11]) + int(rest[12])) / TICKS
    return ProcessSample(pid, ppid, session, name, cpu, _pss(pid) or int(statm[1]) * PAGE)


def _pss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_tree(root: int) -> list[ProcessSample]:
    """The root, its descendants, and anything else in its session (daemonised helpers)."""
    everything = [
        sample
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (sample := read_process(int(entry.name))) is not None
    ]
    children: dict[int, list[ProcessSample]] = {}
    for sample in everything:
        children.setdefault(sample.ppid, []).append(sample)
    found = {s.pid: s for s in everything if root in (s.pid, s.session)}
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid not in found:
                found[child.pid] = child
                todo.append(child.pid)
    return list(found.values())


class Server:
    def __init__(self, launch: Launch, log: Path, venv_bin: Path) -> None:
        self.launch = launch
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPML_", "VIRTUAL"))}
        env.update(
            PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(venv_bin.parent),
            PYTHONUNBUFFERED="1",
            **launch.env,
        )
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.answer_bytes = 0  # body length of the last checked answer

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.launch.argv,
                cwd=self.launch.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def wait_ready(self, answer: Callable[[Any], str], expected: str) -> float:
        """Seconds until a real prediction comes back right; raises if it never does."""
        started = time.monotonic()
        deadline = started + self.launch.ready_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise ServerError(f"exited before it was ready\n{self.tail()}")
            try:
                got = answer(self.predict())
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(POLL)
                continue
            if got != expected:
                raise ServerError(f"answered {got!r}, expected {expected!r}\n{self.tail()}")
            return time.monotonic() - started
        raise ServerError(f"not ready in {self.launch.ready_timeout:.0f} s ({last})\n{self.tail()}")

    def predict(self) -> Any:
        request = urllib.request.Request(
            self.launch.url,
            data=self.launch.body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        self.answer_bytes = len(raw)
        return json.loads(raw)

    def tree(self) -> list[ProcessSample]:
        return process_tree(self.pid)

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever of the tree is left."""
        if self.process is None:
            return
        leftovers = self.tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for sample in leftovers:  # anything that left the group (setsid) goes too
            if read_process(sample.pid) is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(sample.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
