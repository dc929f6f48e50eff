"""What every command group shares: the consoles, the ``--store``/``--project`` options
and how a command finds the store the user means."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shipml.project import Project
    from shipml.store import Reference, Store

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


# Commands import the package that does their work when they run, never at the top of a
# module here: `shipml --help` then loads typer and rich only (the store alone would add
# fsspec, ~0.1 s; docker, numpy and the flavours much more).


def open_store(url: str | None, project: Project | None = None) -> Store:
    """The store the user means: --store, $SHIPML_STORE, the project's (``project``, or
    the nearest one), or the default."""
    from shipml.project import store_url, store_url_here  # on use: see above
    from shipml.store.store import Store

    return Store(store_url(url, project) if project else store_url_here(url))


def reference(text: str) -> Reference:
    """``text`` (NAME, NAME:N, NAME@ALIAS or a file) as a reference; raises if malformed."""
    from shipml.store.reference import parse_reference  # on use: see above

    return parse_reference(text)


def command_line() -> list[str]:
    """The command as typed, recorded in generated files so they can be made again."""
    return ["shipml", *sys.argv[1:]]


def options_from(kind: type[T], parameters: dict[str, Any]) -> T:
    """The options object of ``kind`` (a dataclass) from a command's parameters (its
    ``locals()``), matched by name: the one place options go from the CLI to a package."""
    names = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    return kind(**{key: value for key, value in parameters.items() if key in names})
