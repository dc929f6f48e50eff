"""Drive a real ``shipml serve`` with wrk and report throughput, latency and CPU per worker.

A quick tool for working on the serving hot path (docs/performance.md), not the
side-by-side benchmark against other servers. It trains the benchmark models into a
private store once (iris: a calibrated SVC, 4 features; iris-svc: ``SVC(probability=True)``
as PEERS.md measured it; digits: a 100-tree random forest, 64 features), starts
``shipml serve MODEL --workers 2`` the way the benchmark does, warms up, then runs wrk
(1 thread, keep-alive, one row per POST) at each concurrency and prints one line per run::

    python bench/profile_hot_path.py --model iris --concurrency 1 32 --repeat 3
    SHIPML_BATCHING=false python bench/profile_hot_path.py --model iris -c 1
    python bench/profile_hot_path.py --model iris -c 32 --py-spy /tmp/iris --metrics

Needs Debian's ``wrk`` (``apt-get install wrk``) and, for ``--py-spy``, ``pip install
py-spy``. The machine is shared and has two cores: run each point a few times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SHIPML = str(Path(sys.executable).with_name("shipml"))
TICKS = os.sysconf("SC_CLK_TCK")
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def train(store: Path) -> None:
    """Publish iris and digits into ``store`` unless they are there already."""
    if (store / "models" / "iris-svc").exists():
        return
    os.environ["SHIPML_STORE"] = str(store)
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_digits, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    import shipml

    iris = load_iris()
    x, y = iris.data, iris.target_names[iris.target]
    model = CalibratedClassifierCV(SVC(random_state=0), ensemble=False).fit(x, y)
    shipml.save_model(model, training_data=x, feature_names=IRIS_FEATURES, name="iris")
    with warnings.catch_warnings():  # deprecated in scikit-learn 1.9; PEERS.md measured it
        warnings.simplefilter("ignore", FutureWarning)
        svc = SVC(probability=True, random_state=0).fit(x, y)
    shipml.save_model(svc, training_data=x, feature_names=IRIS_FEATURES, name="iris-svc")
    digits = load_digits()
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(
        digits.data, digits.target
    )
    names = [f"pixel_{i}" for i in range(64)]
    shipml.save_model(forest, training_data=digits.data, feature_names=names, name="digits")


def body_for(model: str) -> str:
    if model.startswith("iris"):
        return '{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}'
    from sklearn.datasets import load_digits

    row = load_digits().data[7].tolist()
    return "{" + ", ".join(f'"pixel_{i}": {v}' for i, v in enumerate(row)) + "}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        result[f"p{pct}"] = to_ms(re.search(rf"\s{pct}%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"  wrk socket errors: {socket_errors.group(1)}", file=sys.stderr)
    return result


def batch_summary(text: str) -> str:
    """Mean rows per model call and the batch-size histogram, from ``/metrics``."""
    values = {}
    for line in text.splitlines():
        if line.startswith(("shipml_batch_size", "shipml_queue_wait_seconds")):
            key, number = line.rsplit(" ", 1)
            values[key] = float(number)
    calls = values.get("shipml_batch_size_count", 0.0)
    if not calls:
        return "  no model calls"
    buckets: list[str] = []
    previous = 0.0
    for name, value in values.items():
        if name.startswith("shipml_batch_size_bucket") and value > previous:
            bound = name.split('"')[1]
            buckets.append(f"{bound}:{(value - previous) / calls:.0%}")
            previous = value
    waits = values.get("shipml_queue_wait_seconds_count")  # absent before batching
    waited = (
        f"oldest job waited {values['shipml_queue_wait_seconds_sum'] / waits * 1000:.2f} ms "
        "on average; "
        if waits
        else ""
    )
    return (
        f"  {calls:.0f} model calls, {values['shipml_batch_size_sum'] / calls:.1f} rows each; "
        f"{waited}rows <= {' '.join(buckets)}"
    )


def run(args: argparse.Namespace) -> None:
    store = Path(args.store)
    train(store)
    work = Path(tempfile.mkdtemp(prefix="shipml-profile-"))
    script = work / "post.lua"
    body = body_for(args.model).replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    port = free_port()
    env = {**os.environ, "SHIPML_STORE": str(store), "SHIPML_CACHE": str(work / "cache")}
    log = (work / "serve.log").open("wb")
    command = [SHIPML, "serve", f"{args.model}@latest", "--workers", str(args.workers)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        time.sleep(1.0)  # every worker loaded, not only the one that answered
        wrk(f"{url}/predict", script, 32, args.warmup)
        for connections in args.concurrency:
            for _ in range(args.repeat):
                workers = children(server.pid)
                before = [cpu_seconds(p) for p in workers]
                spies = [
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).with_name("py-spy")),
                            "record",
                            "--rate",
                            "200",
                            "--format",
                            args.py_spy_format,
                            "-o",
                            f"{args.py_spy}.c{connections}.w{index}",
                            "--pid",
                            str(pid),
                            "--duration",
                            str(args.duration),
                            *(["--native"] if args.native else []),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for index, pid in enumerate(workers if args.py_spy else [])
                ]
                result = wrk(f"{url}/predict", script, connections, args.duration)
                for spy in spies:
                    spy.wait()
                cpu = [cpu_seconds(p) - b for p, b in zip(workers, before, strict=True)]
                total = result["rps"] * args.duration
                split = " / ".join(f"{c:.1f}" for c in cpu)
                print(
                    f"{args.model} c={connections:<3} {result['rps']:>9.0f} req/s  "
                    f"p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms  "
                    f"worker CPU s {split}  {sum(cpu) / total * 1e6:.0f} µs/req"
                    + (f"  non-2xx {result['non2xx']:.0f}" if result["non2xx"] else ""),
                    flush=True,
                )
        if args.metrics:
            print(batch_summary(httpx.get(f"{url}/metrics").text))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        if args.keep:
            print(f"log and files in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("iris", "iris-svc", "digits"), default="iris")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "shipml-bench-store"))
    parser.add_argument("--py-spy", help="record a profile of each worker to PATH.cN.wI")
    parser.add_argument("--py-spy-format", default="flamegraph", choices=("flamegraph", "raw"))
    parser.add_argument("--native", action="store_true", help="py-spy --native")
    parser.add_argument("--metrics", action="store_true", help="print the batch metrics at the end")
    parser.add_argument("--keep", action="store_true", help="keep the serve log")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
