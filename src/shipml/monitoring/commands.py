"""``shipml monitor …``: drift reports from a version's payload log.

Registered on the main app in :mod:`shipml.cli`. Needs the ``monitor`` extra (scipy for
the tests, matplotlib for the figures): ``pip install 'shipml[monitor]'``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from shipml.errors import ShipmlError
from shipml.store import Store
from shipml.store.commands import StoreOption, open_store
from shipml.store.reference import parse_reference

monitor_app = typer.Typer(
    help="Monitoring: drift reports from the requests a service logged.", no_args_is_help=True
)
console = Console(soft_wrap=True, highlight=False)
DRIFT_EXIT = 3  # --fail-on-drift: distinct from 1, an error
DASHBOARD = "grafana-dashboard.json"


@monitor_app.command("report")
def report_command(
    model: Annotated[str, typer.Argument(help="name:N or name@alias (name: the latest).")],
    since: Annotated[
        str | None, typer.Option(help="Window ending now: 30m, 24h, 7d … (default 24h).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Window start, UTC: 2026-11-30 or …T14:00.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Window end, UTC (default: now).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path("report.html"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON here.")
    ] = None,
    fail_on_drift: Annotated[
        float | None,
        typer.Option(
            help=f"Exit with status {DRIFT_EXIT} when a feature's drift (PSI) reaches this.",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    log_store: Annotated[
        str | None,
        typer.Option(
            "--monitor-store",
            help="Where the payload log is, when the service wrote it elsewhere "
            "(SHIPML_MONITOR_STORE); default: the model's store.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare the logged requests of a version with its training data; write a report."""
    missing = [n for n in ("scipy", "matplotlib") if importlib.util.find_spec(n) is None]
    if missing:
        raise ShipmlError(
            f"the report needs {' and '.join(missing)}: pip install 'shipml[monitor]'"
        )
    from shipml.monitoring import html, reading
    from shipml.monitoring.report import build

    span = reading.window(since, start, end)
    target = open_store(store)
    ref = parse_reference(model)
    version = target.resolve(ref)
    manifest, digest = target.manifest(ref.name, version)
    log = Store(log_store) if log_store else target
    report = build(target, manifest, digest, span, log)
    _write(out, html.render(report).encode())
    if json_out is not None:
        _write(json_out, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    summary = report["summary"]
    console.print(
        f"{manifest.ref}: {summary['requests']:,} requests ({summary['records']:,} records) "
        f"from {summary['files']} file(s), {report['window']['from']} to {report['window']['to']}"
    )
    for problem in summary["damaged_files"]:
        console.print(f"[yellow]warning:[/yellow] skipped a damaged log file: {problem}")
    if not summary["requests"]:
        console.print(
            "[yellow]No logged requests in this window.[/yellow] Is monitoring on "
            "(SHIPML_MONITOR=true)? Each worker writes a file every monitor_interval seconds; "
            "a service that wrote elsewhere needs --monitor-store."
        )
    judged = [f for f in report["features"] if (f.get("drift") or {}).get("level") != "too few"]
    for feature in [f for f in judged if f.get("drift")][:5]:
        result = feature["drift"]
        console.print(
            f"  {feature['name']:<28} PSI {result['psi']:7.3f}  {result['level']:<8} "
            f"{result['test']} p={result['p_value']:.2g}"
        )
    console.print(f"Report: {out}" + (f" and {json_out}" if json_out else ""))
    worst = summary.get("max_psi")
    if fail_on_drift is not None and worst is not None and worst >= fail_on_drift:
        console.print(
            f"[red]drift:[/red] {summary['top_feature']} has PSI {worst:.3f}, at or over "
            f"--fail-on-drift {fail_on_drift:g}"
        )
        raise typer.Exit(DRIFT_EXIT)


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ShipmlError(f"cannot write {path}: {exc.strerror or exc}") from None


@monitor_app.command("dashboard")
def dashboard_command() -> None:
    """Print the Grafana dashboard of the live signals (import it in Grafana)."""
    from importlib import resources

    text = (resources.files("shipml.monitoring") / DASHBOARD).read_text()
    typer.echo(text, nl=False)
