"""Model references: ``name``, ``name:3``, ``name@production`` or a file path.

A reference is parsed once, at the edge (command line, environment), into a
:class:`Reference`; everything inside shipml works on the parsed form.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from shipml.errors import ModelReferenceError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
LATEST = "latest"
# A path with one of these suffixes is a model file, not a store name. Defined here, the
# lowest layer that needs them; flavours/pickling.py reads and writes by them too.
# .sav: pickle.dump(model, open("finalized_model.sav", "wb")), as many tutorials save one
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops", ".sav")
MLMODEL = "MLmodel"  # the file that makes a folder an MLflow model (scoring/mlflow_model.py)


@dataclass(frozen=True)
class Reference:
    """A parsed model reference; exactly one of ``version``, ``alias`` and ``path`` is set."""

    name: str
    version: int | None = None
    alias: str | None = None
    path: Path | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias or LATEST}"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise an error that says why.

    Every store path built from a name goes through here (:mod:`shipml.store.paths`), so
    a name can never be a path: no ``/``, no ``..``, nothing but the pattern.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ModelReferenceError(
            f"invalid model name {name!r}: use lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
        raise ModelReferenceError(
            f"invalid alias {alias!r}: use lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter (for example 'production')"
        )
    return alias


def parse_reference(text: str) -> Reference:
    """Parse ``text``; a string naming an existing file is a path reference.

    Whether a file is a model file is the command's to check (``shipml serve`` loads it
    once, and refuses a file no flavour reads, saying what a model file is).

    >>> parse_reference("iris:3")
    Reference(name='iris', version=3, alias=None, path=None)
    """
    candidate = Path(text)
    # os.path: False, not an error, behind a folder this user cannot read.
    exists = os.path.isfile(text)  # noqa: PTH113
    if not exists and os.path.isfile(os.path.join(text, MLMODEL)):  # noqa: PTH113, PTH118
        # an MLflow model folder is named by its folder and read through its MLmodel file
        return Reference(
            name=_name_from_path(candidate.resolve()), path=(candidate / MLMODEL).resolve()
        )
    if candidate.suffix in PICKLE_SUFFIXES or exists:
        if not exists:
            raise ModelReferenceError(f"model file {text!r} does not exist")
        return Reference(name=_name_from_path(candidate), path=candidate.resolve())
    if "@" in text:
        name, _, alias = text.partition("@")
        return Reference(name=check_name(name), alias=check_alias(alias))
    if ":" in text:
        name, _, number = text.partition(":")
        if not (number.isascii() and number.isdigit()) or int(number) < 1:
            raise ModelReferenceError(
                f"invalid version in {text!r}: write NAME:N with N a number from 1, or NAME@ALIAS"
            )
        return Reference(name=check_name(name), version=int(number))
    return Reference(name=check_name(text), alias=LATEST)


def _name_from_path(path: Path) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]", "-", path.stem.lower()).strip("-._")
    return cleaned or "model"
