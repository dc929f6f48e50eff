"""Checks shared by the held-out tabular cases (tests/fixtures/heldout_tabular): what a
checker with models and data not in the repository would try on each.

Each check returns a list of problems (empty when the service behaves), so that one test
run reports every discrepancy of a case at once.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import numpy as np
import pandas as pd

from shipml.scoring.schema import plain
from shipml.serving.app import App
from tests.fixtures.heldout_tabular.case import Case, in_process

WRONG = {"number": "x", "integer": "x", "string": 12345, "boolean": "yes"}


def call(app: App, requests: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    """The requests, concurrently (several share model calls)."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return list(
                await asyncio.gather(
                    *(client.request(method, path, json=body) for method, path, body in requests)
                )
            )

    return asyncio.run(go())


def is_series(rows: Any) -> bool:
    return hasattr(rows, "iloc") and getattr(rows, "ndim", 2) == 1


def records(rows: Any, names: list[str]) -> list[dict[str, Any]]:
    """Held-out rows (DataFrame, Series, array or list of lists) as JSON records."""
    if is_series(rows):
        return [{names[0]: plain(value)} for value in rows]
    if hasattr(rows, "iloc"):
        return [
            {name: plain(value) for name, value in zip(names, row, strict=True)}
            for row in rows[list(rows.columns)].itertuples(index=False)
        ]
    return [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in list(rows)]


def answers_as_array(body: list[dict[str, Any]], classes: list[Any] | None) -> np.ndarray:
    if classes:
        return np.array([[a["probabilities"][str(c)] for c in classes] for a in body])
    return np.array([a["prediction"] for a in body], dtype=float)


def compare(case: Case, got: np.ndarray, rows: Any) -> list[str]:
    expected = np.asarray(in_process(case, rows), dtype=float)
    if expected.ndim == 2 and expected.shape[1] == 1 and got.ndim == 1:
        expected = expected[:, 0]
    if got.shape != expected.shape:
        return [f"answers have shape {got.shape}, in-process {expected.shape}"]
    if not np.allclose(got, expected, rtol=case.tolerance, atol=case.tolerance, equal_nan=True):
        worst = np.nanmax(np.abs(got - expected))
        return [f"answers differ from in-process by up to {worst:g}"]
    return []


# -- the rows of a case, changed one field at a time -----------------------------------


def first_row(rows: Any) -> Any:
    """The first held-out row without a missing value, in the rows' own form."""
    if is_series(rows):
        return rows.dropna().iloc[[0]].copy()
    if hasattr(rows, "iloc"):
        complete = rows.notna().all(axis=1).to_numpy()
        return rows.iloc[[int(np.argmax(complete))]].copy()
    table = [list(r) for r in rows]
    for row in table:
        if not any(v is None or (isinstance(v, float) and math.isnan(v)) for v in row):
            break
    return [row] if isinstance(rows, list) else np.asarray([row], dtype=np.asarray(rows).dtype)


def without(row: Any, position: int) -> Any:
    """``row`` with field ``position`` missing, as a script would write it in-process."""
    if is_series(row):
        return pd.Series([None], index=row.index, name=row.name, dtype=row.dtype)
    if hasattr(row, "iloc"):
        row = row.copy()
        name = row.columns[position]
        if row[name].dtype.kind in "iu" and not hasattr(row[name].dtype, "na_value"):
            row[name] = row[name].astype(np.float64)  # what pandas does with a NaN there
        row.loc[row.index[0], name] = None
        return row
    if isinstance(row, list):
        return [[math.nan if i == position else v for i, v in enumerate(row[0])]]
    changed = row.astype(np.float64 if row.dtype.kind in "iub" else row.dtype, copy=True)
    changed[0, position] = np.nan
    return changed


def complete_rows(rows: Any, example: dict[str, Any]) -> Any:
    """Rows without a missing value: a frame's are filled from the model's example."""
    if is_series(rows):
        return rows.dropna()
    if hasattr(rows, "iloc"):
        filled = rows.copy()
        for name in filled.columns:
            if filled[name].isna().any():
                fill = example[name]
                filled[name] = filled[name].fillna(
                    pd.Timestamp(fill) if filled[name].dtype.kind == "M" else fill
                )
        return filled
    if isinstance(rows, list):
        return [r for r in rows if not any(v is None for v in r)]
    array = np.array(rows, copy=True)
    if array.dtype.kind == "f":
        fill = np.array([np.nan if v is None else v for v in example.values()], dtype=float)
        missing = np.isnan(array)
        array[missing] = np.broadcast_to(fill, array.shape)[missing]
    return array


def some(names: list[str], most: int = 40) -> list[int]:
    """Positions of at most ``most`` fields spread over ``names`` (wide tables stay quick)."""
    step = max(1, -(-len(names) // most))
    return list(range(0, len(names), step))


OIP_TYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}


def infer_body(schema: dict[str, Any], recs: list[dict[str, Any]]) -> dict[str, Any]:
    """An Open Inference Protocol request (JSON) for ``recs``: one tensor per field."""
    inputs = []
    for name in schema["required"]:
        kind = schema["properties"][name]["type"]
        kind = kind if isinstance(kind, str) else next(k for k in kind if k != "null")
        inputs.append(
            {
                "name": name,
                "datatype": OIP_TYPES[kind],
                "shape": [len(recs)],
                "data": [r[name] for r in recs],
            }
        )
    return {"inputs": inputs}
