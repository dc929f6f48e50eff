"""The sweep's results as Markdown, written into ``bench/README.md`` between two markers
so the hand-written text around them stays.

    python -m bench.report [RESULTS.json]     # rewrite the README from saved results

"Peer framework" means the serving frameworks: MLflow, BentoML (either row),
azureml-inference-server-http and MLServer, not the hand-written apps nor the ceiling.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workspace import BENCH

BEGIN = "<!-- bench:serving:begin (written by python -m bench.run; edits inside are lost) -->"
END = "<!-- bench:serving:end -->"
MODEL_TITLES = {
    "iris": "iris — SVC(probability=True), 4 features",
    "digits": "digits — RandomForestClassifier(100 trees), 64 features",
    "tabular": "tabular — census-like DataFrame (12 mixed columns, missing values), "
    "ColumnTransformer(imputers, one-hot, scaler) + HistGradientBoostingClassifier",
}
HAND_WRITTEN = "starlette"  # the hand-written Starlette app
DEFAULT = "shipml"
BATCHING_OFF = "shipml-nobatch"
MONITORED = "shipml-monitor"
LOGGING_BUDGET = 0.05  # payload logging may cost at most 5 % of throughput at c=32


@dataclass(frozen=True)
class Target:
    model: str
    text: str
    value: Callable[[dict[str, Any], list[dict[str, Any]]], float | None]
    goal: float
    higher_is_better: bool
    unit: str  # "×", "%", "ms"


def rps(row: dict[str, Any] | None) -> float | None:
    return row["c32"]["rps"] if row and row["status"] == "ok" else None


def fastest_framework(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in rows if r["kind"] == "framework" and r["status"] == "ok"]
    return max(ok, key=lambda r: r["c32"]["rps"], default=None)


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["server"] == name), None)


def ratio_to_peer(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    mine, best = rps(row), rps(fastest_framework(rows))
    return mine / best if mine and best else None


def share_of_ceiling(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    mine, top = rps(row), rps(by_name(rows, "ceiling"))
    return 100 * mine / top if mine and top else None


def ratio_to_starlette(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    mine, theirs = rps(row), rps(by_name(rows, HAND_WRITTEN))
    return mine / theirs if mine and theirs else None


def p50_over_starlette(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """c=1 p50 as a multiple of the hand-written app's in the same sweep (≤ 1 is the goal)."""
    theirs = by_name(rows, HAND_WRITTEN)
    if not theirs or theirs["status"] != "ok" or not theirs["c1"]["p50_ms"]:
        return None
    return float(row["c1"]["p50_ms"]) / float(theirs["c1"]["p50_ms"])


TARGETS = [
    Target("iris", "iris c=32: req/s ≥ 5× the fastest peer framework", ratio_to_peer, 5, True, "×"),
    Target("iris", "iris c=32: ≥ 30 % of the ceiling", share_of_ceiling, 30, True, " %"),
    Target("iris", "iris c=32: p99 ≤ 10 ms", lambda r, _: r["c32"]["p99_ms"], 10, False, " ms"),
    Target("iris", "iris c=1: p50 ≤ 0.5 ms", lambda r, _: r["c1"]["p50_ms"], 0.5, False, " ms"),
    Target(
        "digits",
        "digits c=32: req/s ≥ 10× the fastest peer framework",
        ratio_to_peer,
        10,
        True,
        "×",
    ),
    # issue 16
    Target("iris", "iris c=32: ≥ 75 % of the ceiling", share_of_ceiling, 75, True, " %"),
    Target("iris", "iris c=1: p50 ≤ the hand-written app's", p50_over_starlette, 1, False, "×"),
    Target(
        "tabular",
        "tabular c=32: req/s ≥ 10× the fastest peer framework",
        ratio_to_peer,
        10,
        True,
        "×",
    ),
    Target(
        "tabular",
        "tabular c=32: req/s ≥ 3× the hand-written app",
        ratio_to_starlette,
        3,
        True,
        "×",
    ),
    Target(
        "tabular", "tabular c=1: p50 ≤ the hand-written app's", p50_over_starlette, 1, False, "×"
    ),
]


def verdict(target: Target, value: float | None) -> str:
    if value is None:
        return "n/a"
    exact = target.unit == " ms" or (target.unit == "×" and not target.higher_is_better)
    shown = f"{value:.2f}{target.unit}" if exact else f"{value:.1f}{target.unit}"
    met = value >= target.goal if target.higher_is_better else value <= target.goal
    if met:
        return f"**met** ({shown})"
    if target.higher_is_better:
        return f"**missed** ({shown}; needs {target.goal / value:.2f}× more)"
    return f"**missed** ({shown}; over by {value - target.goal:.2f}{target.unit})"


def errors(row: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for run in (row["c1"], row["c32"]):
        for key, value in run["errors"].items():
            counts[key] = counts.get(key, 0) + value
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    return f"{total} ({detail})" if total else "0"


UNBALANCED = 80  # % of the tree's CPU in one process: one worker took (nearly) every connection


def split(run: dict[str, Any]) -> str:
    """The busiest processes' shares of the tree's CPU, e.g. ``51 / 48 / 1 %``."""
    total = sum(p["cpu_seconds"] for p in run["cpu_split"]) or 1
    shares = [round(100 * p["cpu_seconds"] / total) for p in run["cpu_split"][:3]]
    shares = [share for share in shares if share] or shares[:1]
    text = " / ".join(str(s) for s in shares) + " %" if shares else ""
    return text + " **one worker**" if shares and shares[0] >= UNBALANCED else text


def table(model: str, rows: list[dict[str, Any]]) -> list[str]:
    ceiling = rps(by_name(rows, "ceiling"))
    shipml = rps(by_name(rows, DEFAULT))
    lines = [
        f"#### {MODEL_TITLES.get(model, model)}",
        "",
        "| server | req/s c=32 | p50 c=1 | p99 c=32 | errors | memory (PSS) | CPU/request c=32 "
        "| CPU split c=32 | of the ceiling | shipml ÷ this | start → ready |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['title']} | {row['status']}: {row['note']} ||||||||||")
            continue
        c1, c32 = row["c1"], row["c32"]
        mine = c32["rps"]
        cells = [
            row["title"],
            f"{mine:,.0f}",
            f"{c1['p50_ms']:.2f} ms",
            f"{c32['p99_ms']:.1f} ms",
            errors(row),
            f"{max(_memory(c1), _memory(c32)):.0f} MB",
            f"{c32['cpu_us_per_request']:,.0f} µs",
            split(c32),
            f"{100 * mine / ceiling:.0f} %" if ceiling and mine else "",
            f"{shipml / mine:.2f}×" if shipml and mine else "",
            ready(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    best = fastest_framework(rows)
    lines.append("")
    if best and shipml:
        lines.append(
            f"Fastest peer framework: {best['title']}, {best['c32']['rps']:,.0f} req/s at c=32; "
            f"shipml (default) does {shipml / best['c32']['rps']:.1f}× that."
        )
        lines.append("")
    return lines


def ready(row: dict[str, Any]) -> str:
    """Start to the first right answer: the median of the starts measured (and their range)."""
    starts = row.get("ready_starts") or ([row["ready_seconds"]] if row.get("ready_seconds") else [])
    if not starts:
        return ""
    ordered = sorted(starts)
    median = ordered[len(ordered) // 2]
    if len(ordered) == 1:
        return f"{median:.2f} s"
    return f"{median:.2f} s ({ordered[0]:.2f}–{ordered[-1]:.2f}, {len(ordered)} starts)"


def targets(results: dict[str, Any]) -> list[str]:
    rows = results["rows"]
    configs = [r["server"] for r in rows if r["kind"] == "shipml" and r["model"] == "iris"]
    configs = list(dict.fromkeys(configs))
    titles = {r["server"]: r["title"] for r in rows}
    lines = [
        "#### Targets (issues 7 and 16)",
        "",
        "| target | " + " | ".join(titles[c] for c in configs) + " |",
        "|---|" + "---|" * len(configs),
    ]
    for target in TARGETS:
        model_rows = [r for r in rows if r["model"] == target.model]
        cells = []
        for config in configs:
            row = by_name(model_rows, config)
            value = None
            if row is not None and row["status"] == "ok":
                value = target.value(row, model_rows)
            cells.append(verdict(target, value))
        lines.append(f"| {target.text} | " + " | ".join(cells) + " |")
    bad = [f"{r['server']}/{r['model']}" for r in rows if r["status"] == "ok" and errors(r) != "0"]
    failed = [f"{r['server']}/{r['model']}" for r in rows if r["status"] == "failed"]
    lines.append("")
    lines.append(
        "Zero errors everywhere: "
        + ("**met**" if not bad else f"**missed** (errors in {', '.join(bad)})")
        + (f"; servers that failed to run: {', '.join(failed)}" if failed else "")
        + "."
    )
    ceiling = by_name(rows, "ceiling")
    if ceiling and ceiling["status"] == "ok" and "one worker" in split(ceiling["c32"]):
        lines += [
            "",
            "The ceiling ran on one worker at c=32 (one process took the connections), so "
            "it is lower than two workers can do and the share of the ceiling is flattering.",
        ]
    lines += ["", *batching(rows), *logging_cost(rows)]
    return lines


def logging_cost(rows: list[dict[str, Any]]) -> list[str]:
    """Payload logging on (default sample rate) against off at c=32: at most 5 % slower."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        off = by_name([r for r in rows if r["model"] == model], DEFAULT)
        on = by_name([r for r in rows if r["model"] == model], MONITORED)
        if not (on and off and on["status"] == off["status"] == "ok"):
            note = on["note"] if on and on["status"] != "ok" else "not measured"
            lines.append(f"- Payload logging on vs off, {model} c=32: n/a ({note}).")
            continue
        cost = 1 - on["c32"]["rps"] / off["c32"]["rps"]
        verdict_text = (
            "**met**" if cost <= LOGGING_BUDGET else f"**missed** by {cost - LOGGING_BUDGET:.1%}"
        )
        lines.append(
            f"- Payload logging on vs off, {model} c=32: {on['c32']['rps']:,.0f} vs "
            f"{off['c32']['rps']:,.0f} req/s (throughput {-cost:+.1%}; a cost ≤ 5 %: "
            f"{verdict_text}); "
            f"CPU/request {on['c32'].get('cpu_us_per_request', 0):,.0f} vs "
            f"{off['c32'].get('cpu_us_per_request', 0):,.0f} µs."
        )
    return lines


def batching(rows: list[dict[str, Any]]) -> list[str]:
    """Batching on (the default) against off at c=1: it must not add more than 0.1 ms."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        on = by_name([r for r in rows if r["model"] == model], DEFAULT)
        off = by_name([r for r in rows if r["model"] == model], BATCHING_OFF)
        if not (on and off and on["status"] == off["status"] == "ok"):
            note = off["note"] if off and off["status"] != "ok" else "not measured"
            lines.append(f"- Batching on vs off, {model} c=1: n/a ({note}).")
            continue
        delta = on["c1"]["p50_ms"] - off["c1"]["p50_ms"]
        verdict_text = "**met**" if delta <= 0.1 else f"**missed** by {delta - 0.1:.2f} ms"
        lines.append(
            f"- Batching on vs off, {model} c=1 p50: {on['c1']['p50_ms']:.3f} ms vs "
            f"{off['c1']['p50_ms']:.3f} ms (Δ {delta:+.3f} ms; ≤ +0.1 ms: {verdict_text}); "
            f"c=32: {on['c32']['rps']:,.0f} vs {off['c32']['rps']:,.0f} req/s."
        )
    if any(" p50: " in line for line in lines):
        lines.append(
            "- These compare two server starts, one c=1 run each: where a model's c=1 latency "
            "moves more than 0.1 ms from one start to the next (a 100-tree forest's does), "
            "they cannot show a 0.1 ms difference. `bench/batching_overhead.py` measures "
            "it with one loaded model shared by both settings, rounds alternated."
        )
    return lines


def profiles(rows: list[dict[str, Any]]) -> list[str]:
    """One line per profiled run: CPU by layer, then the busiest leaf functions."""
    lines = []
    for row in rows:
        profile = row.get("profile")
        if not profile or not profile["samples"]:
            continue
        layers = ", ".join(
            f"{name.split(' (')[0]} {share:.0f} %" for name, share in profile["layers"]
        )
        functions = ", ".join(f"`{name}` {share:.0f} %" for name, share in profile["self_time"][:8])
        lines.append(
            f"- **{row['title']}, {row['model']}** ({profile['samples']} busy samples): "
            f"{layers}. Busiest functions (self): {functions}."
        )
    if not lines:
        return []
    return [
        "#### Profiles (py-spy, an extra c=32 run; `--profile NAMES`)",
        "",
        "Busy CPU samples of the whole process tree by layer (model; HTTP and event loop; "
        "serving code; other), then by leaf function. Raw stacks: "
        "`bench/results/profile-<server>-<model>.txt`.",
        "",
        *lines,
        "",
    ]


def header(meta: dict[str, Any]) -> list[str]:
    d = meta["durations"]
    label = f"**{meta['label']}.** " if meta.get("label") else ""
    versions = "; ".join(
        f"{venv}: " + ", ".join(f"{k} {v}" for k, v in sorted(pkgs.items()))
        for venv, pkgs in meta["versions"].items()
    )
    return [
        f"{label}Measured {meta['date']} on {meta['cores']} cores, shipml {meta['shipml_commit']}; "
        f"load average before {meta['load_before'][0]}, after {meta['load_after'][0]}. "
        f"Each server: warm-up {d['warmup']:g} s at c=32, then c=1 for {d['c1']:g} s and "
        f"c=32 for {d['c32']:g} s. Wall time {meta['total_seconds'] / 60:.1f} min "
        f"(installs {meta['install_seconds']:.0f} s, models {meta['prepare_seconds']:.0f} s, "
        f"sweep {meta['sweep_seconds'] / 60:.1f} min). `{meta['command']}`",
        "",
        f"Versions — {versions}.",
        "",
    ]


def render(results: dict[str, Any]) -> str:
    lines = header(results["meta"])
    models = list(dict.fromkeys(r["model"] for r in results["rows"]))
    for model in models:
        lines += table(model, [r for r in results["rows"] if r["model"] == model])
    lines += targets(results)
    lines += ["", *profiles(results["rows"])]
    return "\n".join(lines)


def write(results: dict[str, Any], readme: Path) -> None:
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{render(results)}\n{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n## Serving (`make bench`)\n\n" + block + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH / "results" / "latest.json"
    write(json.loads(source.read_text()), BENCH / "README.md")


def _memory(run: dict[str, Any]) -> float:
    """A run's peak memory in MB: PSS (``memory_mb``), or RSS in sweeps before it."""
    return float(run.get("memory_mb", run.get("rss_mb", 0.0)))
