"""``shipml models …``: list, inspect, alias and remove versions in a store.

Registered on the main app in :mod:`shipml.cli.app`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from shipml.cli.common import StoreOption, console, errors, open_store, reference
from shipml.errors import ShipmlError

models_app = typer.Typer(
    help="List, inspect, alias and remove model versions.", no_args_is_help=True
)


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    store: StoreOption = None,
) -> None:
    """List models and their versions, newest last."""
    from shipml.store.listing import list_versions  # on use: see cli/common.py

    target = open_store(store)
    rows, problems = list_versions(target, name)
    for problem in problems:
        errors.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    if not rows:
        console.print(f"No models in {target.url} yet; run 'shipml train' in a project.")
        return
    table = Table("model", "created", "aliases", "digest", "metrics")
    for row in rows:
        metrics = row.metrics if row.readable else "[red]unreadable[/red]"
        table.add_row(row.ref, row.created, row.aliases, row.digest, metrics)
    console.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="name, name:N or name@alias.")],
    store: StoreOption = None,
) -> None:
    """Print a version's manifest (JSON) and its digest."""
    target = open_store(store)
    ref = reference(model)
    manifest, digest = target.manifest(ref.name, target.resolve(ref))
    document = {"digest": digest, **orjson.loads(manifest.to_bytes())}
    signed_by = target.signatures(ref.name, manifest.version)
    if signed_by:
        document["signed_by"] = signed_by
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version number.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    store: StoreOption = None,
) -> None:
    """Point NAME@ALIAS at VERSION (moving it if it exists)."""
    target = open_store(store)
    target.set_alias(name, alias, version)
    console.print(f"{name}@{alias} -> {name}:{version}")


@models_app.command("rm")
def models_rm(
    model: Annotated[str, typer.Argument(help="name:N or name@alias.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keep_monitoring: Annotated[
        bool,
        typer.Option(
            "--keep-monitoring", help="Keep the version's payload log (monitoring/NAME/N/)."
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Delete a version (its aliases and payload log go with it; blobs no other version
    uses are freed)."""
    from shipml.monitoring.reading import remove_log  # on use: see cli/common.py

    target = open_store(store)
    ref = reference(model)
    version = target.resolve(ref)
    if not yes:
        _confirm(f"Delete {ref.name}:{version}?")
    dropped = target.remove(ref.name, version)
    extra = f" and aliases {', '.join(dropped)}" if dropped else ""
    console.print(f"Removed {ref.name}:{version}{extra}")
    log, files = remove_log(target, ref.name, version, keep=keep_monitoring)
    if files:
        done = "Kept" if keep_monitoring else "Removed"
        console.print(f"{done} its payload log: {files} file(s) in {log}")


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise ShipmlError(f"refusing to {question[0].lower()}{question[1:-1]} without --yes")
    typer.confirm(question, abort=True)


@models_app.command("sign")
def models_sign(
    model: Annotated[str, typer.Argument(help="name:N or name@alias.")],
    store: StoreOption = None,
) -> None:
    """Sign a version with the key in $SHIPML_SIGNING_KEY (see docs/store.md, trust)."""
    target = open_store(store)
    ref = reference(model)
    version = target.resolve(ref)
    key_id = target.sign(ref.name, version)
    console.print(f"Signed {ref.name}:{version} with {key_id}")
