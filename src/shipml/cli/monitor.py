"""``shipml monitor …``: drift reports from a version's payload log.

Registered on the main app in :mod:`shipml.cli`. Needs the ``monitor`` extra (scipy for
the tests, matplotlib for the figures): ``pip install 'shipml[monitor]'``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipml.cli.common import StoreOption

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
    options = dict(locals())  # the command's options, before any other name is bound
    from shipml.monitoring.reporting import write_report  # on use: see cli/common.py

    written = write_report(**options)
    for line in written.lines:
        console.print(line)
    if written.drift is not None:
        console.print(written.drift)
        raise typer.Exit(DRIFT_EXIT)


@monitor_app.command("dashboard")
def dashboard_command() -> None:
    """Print the Grafana dashboard of the live signals (import it in Grafana)."""
    text = (resources.files("shipml.monitoring") / DASHBOARD).read_text()
    typer.echo(text, nl=False)
