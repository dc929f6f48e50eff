"""What every command group shares: the consoles, the ``--store``/``--project`` options
and how a command finds the store the user means."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from shipml.project import store_url_here
from shipml.store.store import Store

T = TypeVar("T")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", help="Store URL or folder (default: $SHIPML_STORE or ~/.shipml/store)."
    ),
]
ProjectOption = Annotated[
    Path | None, typer.Option("--project", "-p", help="Project folder (default: the nearest one).")
]


def open_store(url: str | None) -> Store:
    """The store the user means: --store, $SHIPML_STORE, the project's, or the default."""
    return Store(store_url_here(url))


def command_line() -> list[str]:
    """The command as typed, recorded in generated files so they can be made again."""
    return ["shipml", *sys.argv[1:]]


def options_from(kind: type[T], parameters: dict[str, Any]) -> T:
    """The options object of ``kind`` (a dataclass) from a command's parameters (its
    ``locals()``), matched by name: the one place options go from the CLI to a package."""
    names = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{key: value for key, value in parameters.items() if key in names})
