"""The serving benchmark: shipml side by side with the other model servers (``make bench``).

    python -m bench.run                       # the full sweep; writes bench/README.md
    python -m bench.run --quick               # a smoke sweep with short runs
    python -m bench.run --only shipml,ceiling --models iris

Installs every server in its own venv (cached), trains the two models once, then for each
model and server: start it with two workers, check a real prediction, warm up, measure
with wrk at c=1 and c=32, stop it. Results go to ``bench/results/`` (JSON) and the tables
into ``bench/README.md`` between its markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import report, venvs
from bench.models import MODELS
from bench.peers import ModelInfo, Peer, Venv, load_peers
from bench.sweep import Durations, Row, measure
from bench.workspace import BENCH, REPO, Workspace

FULL = Durations(warmup=3, c1=10, c32=15)
QUICK = Durations(warmup=1, c1=2, c32=3)
DEFAULT_PROFILE = "shipml,shipml-onnx"  # what bounds shipml goes into the README
SHOWN_PACKAGES = (
    "scikit-learn", "numpy", "uvicorn", "starlette", "flask", "gunicorn", "mlflow", "bentoml",
    "azureml-inference-server-http", "mlserver", "mlserver-sklearn", "shipml", "onnxruntime",
    "skl2onnx", "granian", "hypercorn", "uvloop",
)  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke sweep")
    parser.add_argument("--duration", type=float, help="seconds of each measured run (c=1, c=32)")
    parser.add_argument("--c1-seconds", type=float, help=f"c=1 run (default {FULL.c1:g})")
    parser.add_argument("--c32-seconds", type=float, help=f"c=32 run (default {FULL.c32:g})")
    parser.add_argument("--warmup-seconds", type=float, help=f"(default {FULL.warmup:g})")
    parser.add_argument("--only", help="comma-separated server names (see --list)")
    parser.add_argument("--models", help="iris,digits,tabular (default: all; iris with --quick)")
    parser.add_argument(
        "--starts",
        type=int,
        default=5,
        help="starts per row, start → ready is their median (default 5; 1 with --quick)",
    )
    parser.add_argument(
        "--reuse-models",
        action="store_true",
        help="keep the models the last sweep trained and exported (saves minutes)",
    )
    parser.add_argument("--repo", type=Path, default=REPO, help="the shipml checkout to measure")
    parser.add_argument("--readme", type=Path, default=BENCH / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="results JSON only")
    parser.add_argument("--label", default="", help="a note for the README, e.g. 'dev run'")
    parser.add_argument("--list", action="store_true", help="list the servers and exit")
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"servers to profile with py-spy in an extra c=32 run (default {DEFAULT_PROFILE}; "
        "'none' for none)",
    )
    return parser.parse_args(argv)


def durations(args: argparse.Namespace) -> Durations:
    base = QUICK if args.quick else FULL
    c1 = args.c1_seconds or args.duration or base.c1
    c32 = args.c32_seconds or args.duration or base.c32
    return Durations(warmup=args.warmup_seconds or base.warmup, c1=c1, c32=c32)


def select(args: argparse.Namespace, ws: Workspace) -> tuple[list[Venv], list[Peer]]:
    venv_specs: list[Venv] = []
    peers: list[Peer] = []
    for make_venv, module_peers in load_peers():
        venv_specs.append(make_venv(ws))
        peers.extend(module_peers)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        known = [peer.name for peer in peers]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise SystemExit(f"--only: unknown server {', '.join(unknown)}; known: {known}")
        peers = [peer for peer in peers if peer.name in names]
    needed = {peer.venv for peer in peers} | {"shipml"}  # shipml's venv trains the models
    return [v for v in venv_specs if v.name in needed], peers


def prepare_models(
    ws: Workspace, venv_specs: list[Venv], broken: set[str], reuse: bool = False
) -> list[ModelInfo]:
    """Train once in the shipml venv, then write the other formats in their own venvs
    (``reuse``: keep what the last sweep wrote, when every model is there)."""
    if reuse and all((ws.work / "models" / name / "meta.json").is_file() for name in MODELS):
        print("  (reusing the models of the last sweep: --reuse-models)")
        return [ModelInfo.load(ws.work / "models" / name) for name in MODELS]
    shutil.rmtree(ws.work, ignore_errors=True)
    ws.logs.mkdir(parents=True)
    env = {
        **os.environ,
        "SHIPML_STORE": str(ws.work / "store"),
        "SHIPML_CACHE": str(ws.work / "shipml-cache"),
        "BENTOML_HOME": str(ws.work / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "MLFLOW_TRACKING_URI": str(ws.work / "mlruns"),
    }

    def models(venv: str, *args: str) -> None:
        log = ws.logs / f"models-{'-'.join(args)}.log"
        with log.open("w") as out:
            done = subprocess.run(
                [str(ws.python(venv)), "-m", "bench.models", *args, str(ws.work)],
                cwd=BENCH.parent, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600,
                check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"bench.models {' '.join(args)} failed in venv {venv}: see {log}")

    models("shipml", "train")
    exports = [v for v in venv_specs if v.export and v.name not in broken]
    with ThreadPoolExecutor(4) as pool:
        futures = {v.name: pool.submit(models, v.name, "export", v.export or "") for v in exports}
    for name, future in futures.items():
        if future.exception():
            print(f"! {future.exception()}")
            broken.add(name)
    return [ModelInfo.load(ws.work / "models" / name) for name in MODELS]


def git_describe(repo: Path) -> str:
    def git(*args: str) -> str:
        command = ["git", "-C", str(repo), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def install(ws: Workspace, venv_specs: list[Venv]) -> tuple[list[venvs.Installed], set[str]]:
    print(f"Installing {len(venv_specs)} venvs under {ws.venvs} (cached) …")
    installed = venvs.ensure_all(ws, venv_specs)
    for item in installed:
        state = "reused" if item.reused else f"{item.seconds:.0f} s"
        print(f"  {item.name:10} {item.error or state}")
    broken = {item.name for item in installed if item.error}
    if "shipml" in broken:
        raise SystemExit("the shipml venv did not install: nothing to measure")
    return installed, broken


def sweep(
    ws: Workspace,
    peers: list[Peer],
    models: list[ModelInfo],
    timing: Durations,
    *,
    broken: set[str],
    profiled: set[str],
    starts: int = 1,
) -> list[Row]:
    """Every model × server, one server at a time, in the order of bench.peers."""
    py_spy = Path(sys.executable).with_name("py-spy")
    rows: list[Row] = []
    shared: dict[str, Row] = {}
    for model in models:
        for peer in peers:
            print(f"{model.name} · {peer.name}")
            if not peer.per_model and peer.name in shared:
                rows.append(Row(**{**vars(shared[peer.name]), "model": model.name}))
                print("  (model-independent: the first run serves)")
                continue
            if peer.venv in broken:
                note = f"venv {peer.venv} did not install or export the model"
                row = Row(peer.name, peer.title, peer.kind, model.name, "failed", note=note)
            else:
                spy = py_spy if peer.name in profiled else None
                row = measure(ws, peer, model, timing, py_spy=spy, starts=starts)
            rows.append(row)
            shared.setdefault(peer.name, row)
    return rows


def save(results: dict[str, Any], ws: Workspace) -> None:
    ws.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in (f"sweep-{stamp}.json", "latest.json"):
        (ws.results / name).write_text(json.dumps(results, indent=1))
    print(f"Results: {ws.results / 'latest.json'}")


def shown_versions(ws: Workspace, venv_specs: list[Venv], broken: set[str]) -> dict[str, Any]:
    return {
        v.name: {k: ver for k, ver in venvs.versions(ws, v.name).items() if k in SHOWN_PACKAGES}
        for v in venv_specs
        if v.name not in broken
    }


def main(argv: list[str]) -> int:
    args = parse(argv)
    ws = Workspace(repo=args.repo.resolve())
    venv_specs, peers = select(args, ws)
    if args.list:
        for peer in peers:
            print(f"{peer.name:20} {peer.kind:13} {peer.title}")
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does it)")
    default_models = "iris" if args.quick else ",".join(MODELS)
    wanted_models = [name.strip() for name in (args.models or default_models).split(",")]
    if not set(wanted_models) <= set(MODELS):
        raise SystemExit(f"--models: choose from {', '.join(MODELS)}")
    profiled = {name.strip() for name in args.profile.split(",") if name.strip()} - {"none"}
    if profiled and not Path(sys.executable).with_name("py-spy").exists():
        raise SystemExit("--profile needs py-spy: pip install 'shipml[bench]' (make bench does)")
    timing = durations(args)
    began = time.monotonic()
    load_before = os.getloadavg()
    installed, broken = install(ws, venv_specs)
    installed_at = time.monotonic()
    print("Training the models and writing every format …")
    models = [
        m
        for m in prepare_models(ws, venv_specs, broken, args.reuse_models)
        if m.name in wanted_models
    ]
    prepared = time.monotonic()
    starts = 1 if args.quick else max(1, args.starts)
    rows = sweep(ws, peers, models, timing, broken=broken, profiled=profiled, starts=starts)
    ended = time.monotonic()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "label": args.label,
        "command": shlex.join(["python", "-m", "bench.run", *argv]),
        "shipml_commit": git_describe(ws.repo),
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "durations": vars(timing),
        "install_seconds": round(installed_at - began, 1),
        "installs": [vars(item) for item in installed],
        "prepare_seconds": round(prepared - installed_at, 1),
        "sweep_seconds": round(ended - prepared, 1),
        "total_seconds": round(ended - began, 1),
        "versions": shown_versions(ws, venv_specs, broken),
    }
    results = {"meta": meta, "rows": [row.to_json() for row in rows]}
    save(results, ws)
    if not args.no_readme:
        report.write(results, args.readme)
        print(f"Table written into {args.readme}")
    print(f"Wall time {(ended - began) / 60:.1f} min (installs {installed_at - began:.0f} s)")
    failed = [f"{row.server}/{row.model}" for row in rows if row.status == "failed"]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
