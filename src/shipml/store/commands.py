"""``shipml models …``: list, inspect, alias and remove versions in a store.

Registered on the main app in :mod:`shipml.cli`, which also uses :func:`open_store` and
``StoreOption`` so every command finds the store the same way.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from shipml.errors import ShipmlError
from shipml.store.reference import parse_reference
from shipml.store.store import Store

models_app = typer.Typer(
    help="List, inspect, alias and remove model versions.", no_args_is_help=True
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL or folder (default: $SHIPML_STORE or ~/.shipml/store)."
    ),
]


def open_store(url: str | None) -> Store:
    """The store the user means: --store, $SHIPML_STORE, the project's, or the default."""
    from shipml.project import find_project, load_project
    from shipml.train import store_url

    root = None if (url or os.environ.get("SHIPML_STORE")) else find_project()
    return Store(store_url(url, load_project(root) if root else None))


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    store: StoreOption = None,
) -> None:
    """List models and their versions, newest last."""
    target = open_store(store)
    table = Table("model", "created", "aliases", "digest", "metrics")
    problems: list[str] = []
    for model in [name] if name else target.models():
        try:
            aliases = target.aliases(model)
        except ShipmlError as exc:  # one damaged alias does not hide the versions
            aliases, problems = {}, [*problems, exc.message]
        for version in target.versions(model):
            try:
                manifest, digest = target.manifest(model, version)
            except ShipmlError as exc:
                table.add_row(f"{model}:{version}", "", "", "", "[red]unreadable[/red]")
                problems.append(exc.message)
                continue
            names = sorted(a for a, v in aliases.items() if v == version)
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in manifest.metrics.items())
            table.add_row(manifest.ref, manifest.created, ", ".join(names), digest[7:19], metrics)
    for problem in problems:
        errors.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    if not table.rows:
        console.print(f"No models in {target.url} yet; run 'shipml train' in a project.")
        return
    console.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="name, name:N or name@alias.")],
    store: StoreOption = None,
) -> None:
    """Print a version's manifest (JSON) and its digest."""
    target = open_store(store)
    ref = parse_reference(model)
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
    from shipml.monitoring import reading
    from shipml.store.paths import monitoring_key

    target = open_store(store)
    ref = parse_reference(model)
    version = target.resolve(ref)
    if not yes:
        if not sys.stdin.isatty():
            raise ShipmlError(f"refusing to delete {ref.name}:{version} without --yes")
        typer.confirm(f"Delete {ref.name}:{version}?", abort=True)
    dropped = target.remove(ref.name, version)
    extra = f" and aliases {', '.join(dropped)}" if dropped else ""
    console.print(f"Removed {ref.name}:{version}{extra}")
    log = f"{target.url}/{monitoring_key(ref.name, version)}"
    try:
        if keep_monitoring:
            kept = len(reading.part_keys(target.backend, ref.name, version))
            if kept:
                console.print(f"Kept its payload log: {kept} file(s) in {log}")
            return
        removed = reading.remove(target.backend, ref.name, version)
    except (OSError, ShipmlError) as exc:
        reason = exc.message if isinstance(exc, ShipmlError) else str(exc)
        raise ShipmlError(
            f"removed {ref.name}:{version} but not its payload log in {log} ({reason}); "
            "delete that folder by hand"
        ) from None
    if removed:
        console.print(f"Removed its payload log: {removed} file(s) in {log}")


@models_app.command("sign")
def models_sign(
    model: Annotated[str, typer.Argument(help="name:N or name@alias.")],
    store: StoreOption = None,
) -> None:
    """Sign a version with the key in $SHIPML_SIGNING_KEY (see docs/store.md, trust)."""
    target = open_store(store)
    ref = parse_reference(model)
    version = target.resolve(ref)
    key_id = target.sign(ref.name, version)
    console.print(f"Signed {ref.name}:{version} with {key_id}")
