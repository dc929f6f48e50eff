"""Prometheus values across forked workers: each process writes its own file, all add up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os
    from prometheus_client import CollectorRegistry, multiprocess
    from shipml.serving.metrics import Metrics

    metrics = Metrics()
    metrics.latency.labels("/predict").observe(0.1)          # the parent, before the fork
    child = os.fork()
    if child == 0:
        metrics.latency.labels("/predict").observe(0.2)      # the child, same objects
        os._exit(0)
    os.waitpid(child, 0)
    metrics.latency.labels("/predict").observe(0.3)          # the parent again
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "shipml_request_duration_seconds_count":
                print("count", sample.value)
    print("parent", os.getpid(), "child", child)
    """
)


def test_a_forked_worker_writes_its_own_values_and_scrapes_add_them_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert float(lines["count"]) == 3.0
    _, parent, _, child = ("parent " + lines["parent"]).split()
    files = {p.name for p in tmp_path.iterdir()}
    assert f"histogram_{parent}.db" in files and f"histogram_{child}.db" in files
