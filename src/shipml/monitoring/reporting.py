"""``shipml monitor report`` apart from its options: check the extra is installed, find
the version and its log, build the report, write it, and say what it found."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shipml.errors import ShipmlError
from shipml.project import store_url_here
from shipml.store.reference import parse_reference
from shipml.store.store import Store


@dataclass(frozen=True)
class Written:
    lines: list[str]  # the summary, rich markup
    drift: str | None  # why --fail-on-drift fails, or None


def write_report(
    model: str,
    *,
    store: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    out: Path,
    json_out: Path | None,
    fail_on_drift: float | None,
    log_store: str | None,
) -> Written:
    """Compare the logged requests of ``model`` with its training data; write the HTML
    report to ``out`` (and its figures to ``json_out``)."""
    missing = [n for n in ("scipy", "matplotlib") if importlib.util.find_spec(n) is None]
    if missing:
        raise ShipmlError(
            f"the report needs {' and '.join(missing)}: pip install 'shipml[monitor]'"
        )
    # Imported once the extra is known to be there: they need scipy and matplotlib.
    from shipml.monitoring import html, reading
    from shipml.monitoring.report import build

    span = reading.window(since, start, end)
    target = Store(store_url_here(store))
    ref = parse_reference(model)
    version = target.resolve(ref)
    manifest, digest = target.manifest(ref.name, version)
    log = Store(log_store) if log_store else target
    report = build(target, manifest, digest, span, log)
    _write(out, html.render(report).encode())
    if json_out is not None:
        _write(json_out, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    lines = summary(manifest.ref, report)
    lines.append(f"Report: {out}" + (f" and {json_out}" if json_out else ""))
    return Written(lines, _drift(report, fail_on_drift))


def summary(ref: str, report: dict[str, Any]) -> list[str]:
    """What the report found, in a few lines: volume, damage, the most drifted features."""
    summary = report["summary"]
    lines = [
        f"{ref}: {summary['requests']:,} requests ({summary['records']:,} records) "
        f"from {summary['files']} file(s), {report['window']['from']} to {report['window']['to']}"
    ]
    for problem in summary["damaged_files"]:
        lines.append(f"[yellow]warning:[/yellow] skipped a damaged log file: {problem}")
    if not summary["requests"]:
        lines.append(
            "[yellow]No logged requests in this window.[/yellow] Is monitoring on "
            "(SHIPML_MONITOR=true)? Each worker writes a file every monitor_interval seconds; "
            "a service that wrote elsewhere needs --monitor-store."
        )
    judged = [f for f in report["features"] if (f.get("drift") or {}).get("level") != "too few"]
    for feature in [f for f in judged if f.get("drift")][:5]:
        result = feature["drift"]
        lines.append(
            f"  {feature['name']:<28} PSI {result['psi']:7.3f}  {result['level']:<8} "
            f"{result['test']} p={result['p_value']:.2g}"
        )
    return lines


def _drift(report: dict[str, Any], threshold: float | None) -> str | None:
    summary = report["summary"]
    worst = summary.get("max_psi")
    if threshold is None or worst is None or worst < threshold:
        return None
    return (
        f"[red]drift:[/red] {summary['top_feature']} has PSI {worst:.3f}, at or over "
        f"--fail-on-drift {threshold:g}"
    )


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ShipmlError(f"cannot write {path}: {exc.strerror or exc}") from None
