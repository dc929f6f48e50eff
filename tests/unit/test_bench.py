"""The serving benchmark's own logic: the report, the profile summary, the process tree.

The sweep itself (venvs, peers, wrk) runs with ``make bench``; these check the parts whose
mistakes would go unnoticed in a table: verdicts, ratios, markers, and stopping servers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.peers import Launch, ModelInfo, label_of_probabilities
from bench.peers.shipml import extras
from bench.profile import OTHER, summarize
from bench.server import Server, process_tree, read_process


def run(rps: float, p50: float = 1.0, p99: float = 5.0, errors: int = 0) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0},
        "memory_mb": 100.0,
        "cpu_us_per_request": 250.0,
        "bytes_per_response": 300.0,
        "cpu_split": [{"pid": 1, "name": "w", "cpu_seconds": 5.0}],
    }


def row(server: str, kind: str, model: str, rps: float, **more: Any) -> dict[str, Any]:
    c1 = run(rps / 4, p50=more.pop("p50", 1.0))
    c32 = run(rps, p99=more.pop("p99", 5.0), errors=more.pop("errors", 0))
    return {"server": server, "title": server, "kind": kind, "model": model, "status": "ok",
            "note": "", "c1": c1, "c32": c32, "profile": None, **more}  # fmt: skip


def results(rows: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {"date": "2026-11-23 12:00 UTC", "label": "test", "command": "python -m bench.run",
            "shipml_commit": "abc", "cores": 2, "load_before": [0.1], "load_after": [0.2],
            "durations": {"warmup": 3, "c1": 10, "c32": 15}, "install_seconds": 5,
            "prepare_seconds": 10, "sweep_seconds": 600, "total_seconds": 615,
            "versions": {"shipml": {"scikit-learn": "1.9.1"}}}  # fmt: skip
    return {"meta": meta, "rows": rows}


SWEEP = [
    row("ceiling", "ceiling", "iris", 30_000),
    row("starlette", "hand-written", "iris", 5_000),  # faster than any framework: not a peer
    row("azureml", "framework", "iris", 1_800),
    row("mlflow", "framework", "iris", 500),
    row("shipml", "shipml", "iris", 12_000, p50=0.3, p99=8.0),
    row("shipml-onnx", "shipml", "iris", 7_200, p50=0.7, p99=12.5),
    row("bentoml-batchable", "framework", "digits", 400),
    row("shipml", "shipml", "digits", 2_000),
    row("shipml-onnx", "shipml", "digits", 5_000),
]


def test_targets_use_the_fastest_framework_and_say_by_how_much_they_are_missed() -> None:
    text = report.render(results(SWEEP))
    targets = text.split("#### Targets")[1]
    line = next(x for x in targets.splitlines() if "5× the fastest" in x)
    # 12,000 / 1,800 (azureml; the hand-written Starlette app is not a peer framework)
    assert "**met** (6.7×)" in line
    assert "**missed** (4.0×; needs 1.25× more)" in line  # 7,200 / 1,800
    p99 = next(x for x in targets.splitlines() if "p99 ≤ 10 ms" in x)
    assert "**met** (8.00 ms)" in p99
    assert "**missed** (12.50 ms; over by 2.50 ms)" in p99
    digits = next(x for x in targets.splitlines() if "digits c=32" in x)
    assert "**missed** (5.0×; needs 2.00× more)" in digits
    assert "**met** (12.5×)" in digits
    assert "Zero errors everywhere: **met**" in text
    assert "Fastest peer framework: azureml, 1,800 req/s" in text


def test_errors_anywhere_miss_the_zero_error_target() -> None:
    rows = [*SWEEP[:-1], row("shipml-onnx", "shipml", "digits", 5_000, errors=3)]
    text = report.render(results(rows))
    assert "**missed** (errors in shipml-onnx/digits)" in text
    assert "| 3 (status 3) |" in text


def test_an_unavailable_configuration_is_shown_as_such_not_as_a_failure() -> None:
    na = {**row("shipml-nobatch", "shipml", "iris", 0), "status": "n/a", "c1": None,
          "c32": None, "note": "no SHIPML_BATCHING"}  # fmt: skip
    text = report.render(results([*SWEEP, na]))
    assert "| shipml-nobatch | n/a: no SHIPML_BATCHING |" in text
    assert "Batching on vs off, iris c=1: n/a (no SHIPML_BATCHING)" in text


def test_batching_must_not_add_more_than_a_tenth_of_a_millisecond_at_c1() -> None:
    rows = [row("shipml", "shipml", "iris", 9_000, p50=0.45),
            row("shipml-nobatch", "shipml", "iris", 7_000, p50=0.30)]  # fmt: skip
    lines = report.batching(rows)
    assert "Δ +0.150 ms" in lines[0]
    assert "**missed** by 0.05 ms" in lines[0]


def test_payload_logging_may_cost_at_most_five_percent_at_c32() -> None:
    rows = [row("shipml", "shipml", "iris", 10_000), row("shipml-monitor", "shipml", "iris", 9_600),
            row("shipml", "shipml", "digits", 4_000), row("shipml-monitor", "shipml", "digits", 3_600)]  # fmt: skip
    iris, digits = report.logging_cost(rows)
    assert "9,600 vs 10,000 req/s (throughput -4.0%; a cost ≤ 5 %: **met**)" in iris
    assert "(throughput -10.0%; a cost ≤ 5 %: **missed** by 5.0%)" in digits
    assert "Payload logging on vs off, iris c=32: n/a" in report.logging_cost(rows[:1])[0]


def test_one_busy_worker_is_flagged() -> None:
    busy = run(1000)
    busy["cpu_split"] = [{"pid": 1, "name": "w", "cpu_seconds": 9.0},
                         {"pid": 2, "name": "w", "cpu_seconds": 0.5}]  # fmt: skip
    assert report.split(busy) == "95 / 5 % **one worker**"
    assert report.split(run(1000)) == "100 % **one worker**"


def test_the_readme_keeps_its_hand_written_text(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\n\nbefore\n\n{report.BEGIN}\nold table\n{report.END}\n\nafter\n")
    report.write(results(SWEEP), readme)
    text = readme.read_text()
    assert text.startswith("# Bench\n\nbefore\n\n")
    assert text.endswith(f"{report.END}\n\nafter\n")
    assert "old table" not in text
    assert text.count(report.BEGIN) == 1
    bare = tmp_path / "bare.md"
    bare.write_text("# Bench\n")
    report.write(results(SWEEP), bare)
    assert report.BEGIN in bare.read_text()


RAW = """\
process 1:"shipml";main (shipml/cli.py:1);run (uvicorn/server.py:3);write (libc.so.6) 30
process 1:"shipml";main (shipml/cli.py:1);handle (/x/src/shipml/serving/app.py:9) 20
process 1:"shipml";predict_proba (site-packages/sklearn/svm/_base.py:5);dot (libopenblas.so) 40
process 1:"shipml";_worker (concurrent/futures/thread.py:81);PyThread_acquire_lock_timed (libpython3.11.so) 500
process 1:"shipml";0x7f00 (libc.so.6) 10
"""


def test_the_profile_sorts_busy_samples_into_layers_and_leaves_out_waiting() -> None:
    profile = summarize(RAW)
    assert profile.samples == 100
    assert profile.waiting == 500
    layers = dict(profile.layers)
    assert layers[next(name for name in layers if name.startswith("model"))] == 40.0
    assert layers[next(name for name in layers if name.startswith("HTTP"))] == 30.0
    assert layers[next(name for name in layers if name.startswith("serving"))] == 20.0
    assert layers[OTHER] == 10.0
    assert profile.self_time[0] == ("dot (libopenblas.so)", 40.0)
    assert ("handle (/x/src/shipml/serving/app.py)", 20.0) in profile.self_time


def test_probabilities_name_a_class_whether_listed_or_keyed() -> None:
    model = ModelInfo("iris", ["a"], ["setosa", "versicolor", "virginica"], [1.0], "virginica",
                      Path("models"))  # fmt: skip
    assert label_of_probabilities([0.1, 0.2, 0.7], model) == "virginica"
    assert label_of_probabilities({"setosa": 0.6, "virginica": 0.4}, model) == "setosa"
    # where the in-process probabilities are known (tabular), the answer must match them
    known = ModelInfo("t", ["a"], ["<=50K", ">50K"], ["x"], ">50K", Path("m"), [0.25, 0.75])
    assert label_of_probabilities([0.25, 0.75], known) == ">50K"
    assert label_of_probabilities({"<=50K": 0.25, ">50K": 0.75}, known) == ">50K"
    assert label_of_probabilities([0.2500001, 0.7499999], known).startswith("probabilities")
    assert label_of_probabilities({">50K": 0.75}, known).startswith("probabilities")


def test_shipml_extras_follow_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\nsklearn = []\ndev = []\n'
    )
    assert extras(tmp_path) == ["sklearn"]
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\nonnx = []\nsklearn = []\n'
    )
    assert extras(tmp_path) == ["sklearn", "onnx"]


@pytest.mark.slow
def test_a_server_tree_is_watched_and_stopped_whole(tmp_path: Path) -> None:
    # A parent that starts a child which ignores SIGTERM: stop() must still end both.
    script = (
        "import signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    launch = Launch(argv=[sys.executable, "-c", script], url="http://127.0.0.1:1/", body=b"")
    server = Server(launch, tmp_path / "server.log", Path(sys.executable).parent)
    server.start()
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "server.log").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int((tmp_path / "server.log").read_text().split()[0])
        pids = {sample.pid for sample in process_tree(server.pid)}
        assert {server.pid, child} <= pids
        assert sum(sample.memory_bytes for sample in server.tree()) > 0
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None
    deadline = time.monotonic() + 10
    while read_process(child) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_process(child) is None or _is_zombie(child)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_server_that_exits_early_fails_with_its_log(tmp_path: Path) -> None:
    from bench.server import ServerError

    launch = Launch(
        argv=[sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"],
        url="http://127.0.0.1:1/predict",
        body=b"{}",
        ready_timeout=20,
    )
    server = Server(launch, tmp_path / "server.log", Path(sys.executable).parent)
    server.start()
    try:
        with pytest.raises(ServerError, match="exited before it was ready") as caught:
            server.wait_ready(str, "x")
        assert "cannot bind" in str(caught.value)
    finally:
        server.stop()


def test_onnx_on_a_dataframe_model_is_not_applicable_not_failed(tmp_path: Path) -> None:
    from bench.peers import load_peers
    from bench.peers.shipml import NUMERIC_ONLY

    (onnx,) = [p for _, peers in load_peers() for p in peers if p.name == "shipml-onnx"]
    tabular = ModelInfo("tabular", ["age", "job"], ["no", "yes"], [40, "clerk"], "no", tmp_path,
                        frame=True)  # fmt: skip
    assert onnx.unavailable(None, tabular) == NUMERIC_ONLY  # type: ignore[arg-type]
