"""Worker and thread sizing in running workers (issue 16): the thread pools threadpoolctl
sees inside a worker serving a HistGradientBoosting model (OpenMP) and a BLAS-backed one,
by default, with one worker, and inside a real cgroup CPU quota."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FORKSERVER_VARIABLE, IRIS_FEATURES, SHIPML, Server, free_port

pytestmark = pytest.mark.slow
USABLE = len(os.sched_getaffinity(0))
V1_CPU = Path("/sys/fs/cgroup/cpu")


@pytest.fixture(autouse=True)
def real_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `shipml` here runs for real, not from the suite's fork server: the thread pools
    are set up by the process's own imports (tests/forkserver.py)."""
    monkeypatch.setenv(FORKSERVER_VARIABLE, "off")


@pytest.fixture
def boosted(iris_data: Any) -> str:
    """A HistGradientBoostingClassifier (OpenMP threads) behind a scaler."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shipml

    x, y = iris_data
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20))
    model.fit(x, y)
    return shipml.save_model(model, training_data=x, feature_names=IRIS_FEATURES, name="hgb")


def sizing(server: Server) -> dict[str, Any]:
    info: dict[str, Any] = httpx.get(f"{server.url}/info", timeout=30).json()["sizing"]
    return info


def pool_threads(info: dict[str, Any]) -> dict[str, int]:
    return {pool["internal_api"]: pool["num_threads"] for pool in info["thread_pools"]}


def test_workers_fill_the_cpus_with_one_thread_each(
    boosted: str, serve: Callable[..., Server]
) -> None:
    default = serve(boosted, wait=False)
    single = serve(boosted, "--workers", "1", wait=False)
    default.wait_ready()
    single.wait_ready()

    info = sizing(default)
    assert (info["cpus"], info["workers"], info["threads_per_worker"]) == (USABLE, USABLE, 1)
    assert info["bounds"]["affinity"] == USABLE
    pools = pool_threads(info)
    assert "openmp" in pools, info["thread_pools"]  # scikit-learn's OpenMP is loaded
    assert set(pools.values()) == {1}, info["thread_pools"]
    assert len(default.workers()) == USABLE
    log = default.log.read_text()
    assert f"sizing: {USABLE} workers x 1 native thread" in log
    # scikit-learn (and its OpenMP runtime) was imported in the master before the fork,
    # and the workers' pools above still hold one thread each (serving/preload.py)
    assert "imported shipml.serving.app, sklearn, sklearn.pipeline in" in log, log

    info = sizing(single)  # one worker: every usable CPU's thread goes to it
    assert (info["workers"], info["threads_per_worker"]) == (1, USABLE)
    assert set(pool_threads(info).values()) == {USABLE}, info["thread_pools"]
    assert len(single.workers()) == 1
    answer = httpx.post(
        f"{single.url}/predict",
        json=dict(zip(IRIS_FEATURES, [6.7, 3.0, 5.2, 2.3], strict=True)),
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["label"] == "virginica"


def test_threads_setting_is_applied_in_the_worker(
    boosted: str, serve: Callable[..., Server]
) -> None:
    server = serve(boosted, "--workers", "1", env={"SHIPML_THREADS": "3"})
    info = sizing(server)
    assert info["threads_per_worker"] == 3
    assert set(pool_threads(info).values()) == {3}, info["thread_pools"]


@pytest.mark.skipif(
    not os.access(V1_CPU / "cpu.cfs_quota_us", os.W_OK), reason="no writable cgroup v1 cpu"
)
def test_a_cgroup_quota_sizes_the_service(boosted: str, tmp_path: Path) -> None:
    """shipml serve started inside a cgroup with a 1.5-CPU quota (what docker --cpus 1.5
    and a Kubernetes limit of 1500m set) runs one worker with one thread."""
    group = V1_CPU / f"shipml-test-serve-{os.getpid()}"
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text("150000")
    port = free_port()
    log = tmp_path / "serve.log"

    def join() -> None:
        (group / "cgroup.procs").write_text(str(os.getpid()))

    with log.open("wb") as output:
        process = subprocess.Popen(
            [SHIPML, "serve", boosted, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=join,  # noqa: PLW1509 - no threads in the test process here
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        server.wait_ready()
        info = sizing(server)
        assert info["bounds"]["cgroup_quota"] == 1.5
        assert (info["cpus"], info["workers"], info["threads_per_worker"]) == (1, 1, 1)
        assert set(pool_threads(info).values()) == {1}
    finally:
        server.stop()
        group.rmdir()
