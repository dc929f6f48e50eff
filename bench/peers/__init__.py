"""The servers the sweep measures: one module per server, each saying how to install it in
its own venv and how to start it with two workers on a port.

A module exposes ``venv(ws)`` (what to install) and ``PEERS`` (one or more rows of the
table that run in that venv). The sweep order is ``MODULES`` below: the ceiling first,
then the hand-written apps, the frameworks, and shipml last.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.workspace import Workspace

# The one scikit-learn every venv gets (PEERS.md measured with it).
SKLEARN = "scikit-learn==1.9.1"
# The tabular model is fitted on a DataFrame and every server builds one per request.
# Unpinned: the frameworks pin their own ranges; the versions row of the results shows it.
PANDAS = "pandas"
# The hand-written apps get one OpenMP/BLAS thread per worker, set by hand: two workers
# with one thread per host core each oversubscribe two cores (HistGradientBoosting's
# OpenMP then spins for whole scheduler slices: 3 s per request on a busy machine). A
# hand-written app tuned this way is the stronger baseline; the frameworks run as
# their docs say.
ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
WORKERS = 2

Kind = Literal["ceiling", "hand-written", "framework", "shipml"]


@dataclass(frozen=True)
class ModelInfo:
    """A trained model and the record that proves a server answers it correctly."""

    name: str  # iris | digits | tabular
    features: list[str]
    classes: list[str]
    record: list[Any]  # the check record, in feature order (numbers; words for tabular)
    label: str  # the class the model gives it
    folder: Path  # holds model.joblib (and meta.json)
    # The probabilities the model gives the check record in-process (tabular): a server's
    # answer must match them to TOLERANCE, not just name the same class.
    probabilities: list[float] | None = None
    frame: bool = False  # fitted on a pandas DataFrame with mixed columns

    @property
    def joblib(self) -> Path:
        return self.folder / "model.joblib"

    @property
    def index(self) -> int:
        return self.classes.index(self.label)

    def as_record(self) -> dict[str, Any]:
        return dict(zip(self.features, self.record, strict=True))

    @classmethod
    def load(cls, folder: Path) -> ModelInfo:
        meta = json.loads((folder / "meta.json").read_text())
        return cls(folder=folder, **meta)


@dataclass(frozen=True)
class Venv:
    name: str
    requirements: tuple[str, ...]
    export: str | None = None  # a model format bench.models writes with this venv's Python
    key: str = ""  # anything else whose change must reinstall (e.g. the repo's pyproject)


@dataclass(frozen=True)
class Launch:
    """How to start one server for one model, and the request that proves it works."""

    argv: list[str]
    url: str  # the prediction URL on 127.0.0.1
    body: bytes  # one row, the server's own request format
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready_timeout: float = 120.0


Answer = Callable[[Any, ModelInfo], str]  # the class a parsed answer names


@dataclass(frozen=True)
class Peer:
    name: str  # the row's key (--only NAME)
    title: str  # what the table says
    kind: Kind
    venv: str
    launch: Callable[[Workspace, ModelInfo, int], Launch]
    answer: Answer
    # None when it can serve this model; else why not (the row is marked n/a with this note).
    unavailable: Callable[[Workspace, ModelInfo], str | None] = lambda ws, model: None
    per_model: bool = True  # False: one run serves for every model (the constant ceiling)


# How far a served probability may be from the in-process one: float64 through JSON is
# exact, so anything but rounding noise means the server computed something else.
TOLERANCE = 1e-12
FLOAT32_TOLERANCE = 1e-5  # ONNX Runtime computes in float32


def label_of_probabilities(
    probabilities: Any, model: ModelInfo, tolerance: float = TOLERANCE
) -> str:
    """The class of a probability row (a list in class order, or a dict by class name);
    where the in-process probabilities are known, a row that differs is named as such."""
    if isinstance(probabilities, dict):
        if model.probabilities is None:
            return str(max(probabilities, key=probabilities.__getitem__))
        row = [float(probabilities.get(name, math.nan)) for name in model.classes]
    else:
        row = [float(p) for p in probabilities]
    if model.probabilities is not None:
        worst = max(abs(a - b) for a, b in zip(row, model.probabilities, strict=True))
        if not worst <= tolerance:  # NaN (a class missing) fails too
            return f"probabilities {row} (in-process {model.probabilities}, off by {worst:.2g})"
    return model.classes[row.index(max(row))]


def load_peers() -> list[tuple[Callable[[Workspace], Venv], list[Peer]]]:
    """Every server module, in sweep order."""
    from bench.peers import (
        asgi_servers,
        azureml,
        bentoml,
        ceiling,
        flask_app,
        mlflow,
        mlserver,
        shipml,
        starlette_app,
    )

    modules: list[Any] = [
        ceiling,
        asgi_servers,
        starlette_app,
        flask_app,
        azureml,
        bentoml,
        mlserver,
        mlflow,
        shipml,
    ]
    return [(module.venv, module.PEERS) for module in modules]
