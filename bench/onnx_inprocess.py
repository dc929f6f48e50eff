"""In-process cost of one model call: scikit-learn vs ONNX Runtime (shipml --onnx).

Trains the PEERS.md models (iris: calibrated SVC and logistic regression; digits: a
100-tree random forest), converts and checks them the way ``shipml serve --onnx`` does,
and times one call at 1, 16 and 64 rows: scikit-learn's ``predict_proba`` against the
ONNX Runtime session shipml serves (1 intra-op thread). Then the thread question: the
forest at 1 and 2 intra-op threads, in one process and in two processes at once (what
two workers on two cores do).

    .venv/bin/python bench/onnx_inprocess.py        # numbers go to docs/performance-onnx.md
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROWS = (1, 16, 64)


def per_call(function: Callable[[], Any], seconds: float = 1.0) -> float:
    """Median microseconds per call over 5 rounds of ~``seconds / 5`` each."""
    for _ in range(3):
        function()
    started = time.perf_counter()
    function()
    once = max(time.perf_counter() - started, 1e-6)
    count = max(3, int(seconds / 5 / once))
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            function()
        rounds.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(rounds)


def models() -> dict[str, tuple[Any, np.ndarray, np.ndarray]]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_digits, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    iris = load_iris()
    xi, yi = iris.data, iris.target_names[iris.target]
    xd, yd = load_digits(return_X_y=True)
    svc = CalibratedClassifierCV(SVC(random_state=0), ensemble=False)
    return {
        "iris SVC (calibrated, scaled)": (make_pipeline(StandardScaler(), svc).fit(xi, yi), xi, yi),
        "iris LogisticRegression": (LogisticRegression(max_iter=500).fit(xi, yi), xi, yi),
        "digits RandomForest(100)": (
            RandomForestClassifier(n_estimators=100, random_state=0).fit(xd, yd),
            xd,
            yd,
        ),
    }


def session(graph: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def _loop(graph: str, threads: int, rows: int, seconds: float, queue: Any) -> None:
    from sklearn.datasets import load_digits

    x = load_digits().data[:rows].astype(np.float32)
    run = session(Path(graph), threads)
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        run.run(None, {"input": x})
        done += 1
    queue.put(done / seconds)


def two_processes(graph: Path, threads: int, rows: int, seconds: float = 3.0) -> float:
    """Calls per second of two processes calling at once (two workers on two cores)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_loop, args=(str(graph), threads, rows, seconds, queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    total = sum(queue.get() for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)


def main() -> None:
    import shipml
    from shipml.scoring import load_scorer
    from shipml.scoring.convert import onnx_version
    from shipml.scoring.onnx import GRAPH
    from shipml.store import Store, parse_reference

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["SHIPML_STORE"] = f"{scratch}/store"
        os.environ["SHIPML_CACHE"] = f"{scratch}/cache"
        store = Store()
        forest_graph = Path(scratch) / "forest.onnx"
        print("| model | rows | scikit-learn µs/call | ONNX Runtime µs/call | speed-up |")
        print("|---|---|---|---|---|")
        for name, (model, x, _) in models().items():
            slug = name.split()[0] + str(len(name))
            ref = shipml.save_model(model, training_data=x, name=slug)
            local = store.fetch(parse_reference(ref))
            with onnx_version(local, store) as (converted, _):
                scorer: Any = load_scorer(converted)
                if "RandomForest" in name:
                    forest_graph.write_bytes((converted.folder / GRAPH).read_bytes())
                for rows in ROWS:
                    batch, batch32 = x[:rows], x[:rows].astype(np.float32)
                    theirs = per_call(partial(model.predict_proba, batch))
                    ours = per_call(partial(scorer.run, batch32))
                    speedup = theirs / ours
                    print(f"| {name} | {rows} | {theirs:,.0f} | {ours:,.1f} | {speedup:,.0f}x |")
        print()
        print("| forest rows | intra-op threads | one process µs/call | two processes calls/s |")
        print("|---|---|---|---|")
        from sklearn.datasets import load_digits

        xd = load_digits().data.astype(np.float32)
        for rows in (1, 64):
            for threads in (1, 2):
                run = session(forest_graph, threads)
                alone = per_call(partial(run.run, None, {"input": xd[:rows]}))
                both = two_processes(forest_graph, threads, rows)
                print(f"| {rows} | {threads} | {alone:,.1f} | {both:,.0f} |")


if __name__ == "__main__":
    main()
