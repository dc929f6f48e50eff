"""Where a server's CPU goes under load: py-spy samples its process tree during an extra
c=32 run (after the measured ones, so the figures in the table are not perturbed).

    python -m bench.run --profile shipml,shipml-onnx

py-spy records only threads that are running (not idle), so the shares below are shares
of busy CPU samples, summed over the workers. ``--native`` adds the C frames (numpy,
libsvm, ONNX Runtime, uvloop), which is what tells "the model" from "the server".
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 100  # samples per second per process (--native needs the blocking mode)
TOP = 12


# Each sample goes to the layer of its deepest frame that names one (leaf first), so a
# libc write under uvloop counts as HTTP, a dict lookup under shipml's code as serving.
LAYERS = (
    ("model (scikit-learn, numpy, scipy, ONNX Runtime)",
     ("sklearn/", "numpy/", "scipy/", "onnxruntime", "narwhals/", "joblib/", "threadpoolctl",
      "libsvm", "openblas", "_multiarray")),
    ("HTTP and event loop (uvicorn, httptools, uvloop, gunicorn, asyncio)",
     ("uvicorn/", "httptools", "uvloop", "loop.c", "asyncio/", "gunicorn/", "h11/", "werkzeug/",
      "socketserver", "wsgiref", "anyio/", "gevent")),
    ("serving code (shipml, the framework or app, JSON, metrics, validation)",
     ("shipml/", "prometheus_client/", "orjson", "json/", "pydantic", "starlette/", "fastapi/",
      "flask/", "mlflow/", "bentoml", "mlserver", "azureml", "apps/", "pandas/")),
)  # fmt: skip
OTHER = "other (interpreter, libc, unresolved)"
# py-spy cannot always tell a thread blocked in C from a busy one when it reads native
# stacks: samples whose last frames wait on a lock or on epoll are not CPU, and are left out.
WAITING = (
    "PyThread_acquire_lock",
    "epoll_wait",
    "epoll_pwait",
    "sem_timedwait",
    "sem_wait",
    "pthread_cond",
    "select (",
    "wait_for_signals",
    "time_sleep",
    "Arbiter.sleep",
)


@dataclass(frozen=True)
class Profile:
    samples: int  # busy samples
    waiting: int  # samples left out as waiting (see WAITING)
    layers: list[tuple[str, float]]  # layer, % of busy samples
    self_time: list[tuple[str, float]]  # function, % of samples where it is the leaf


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for layer, markers in LAYERS:
            if any(marker in frame for marker in markers):
                return layer
    return OTHER


class Recording:
    """py-spy attached to a process tree for a fixed time (started before the load)."""

    def __init__(self, py_spy: Path, pid: int, seconds: float, output: Path) -> None:
        self.output = output
        self.log = output.with_suffix(".log")
        command = [
            str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--native",
            "--rate", str(RATE), "--duration", str(int(seconds) + 1),
            "--format", "raw", "--output", str(output),
        ]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def finish(self, timeout: float = 60) -> Profile | None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self.output.exists():
            return None
        return summarize(self.output.read_text())


def frame_name(frame: str) -> str:
    """``handle (shipml/serving/app.py:120)`` -> ``handle (shipml/serving/app.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def summarize(raw: str) -> Profile:
    """Shares by layer and by leaf function from py-spy's collapsed stacks."""
    leaf: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if any(marker in frame for frame in frames[-4:] for marker in WAITING):
            waiting += count
            continue
        total += count
        leaf[frame_name(frames[-1])] += count
        layers[layer_of(frames)] += count
    if not total:
        return Profile(0, waiting, [], [])

    def share(counter: Counter[str], top: int) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return Profile(total, waiting, share(layers, len(LAYERS) + 1), share(leaf, TOP))
