"""Which fields may be ``null``: where the model takes a missing value.

Decided once, when the model is saved, by what the model does rather than by what it
says about itself: a field is nullable when the training data has a missing value in
that column, or when the model, given its example row with only that field missing,
answers without raising and without a NaN in its answer. That covers an imputer
anywhere in a pipeline (even inside a ``ColumnTransformer``, where scikit-learn's
``allow_nan`` tag does not look), estimators that take NaN natively (histogram gradient
boosting, XGBoost, LightGBM, CatBoost's numeric features, scikit-learn's trees), and
custom transformers alike. One call tries every field at once (one row each); a failing
call is split in halves until each refusing field stands alone.

A numpy ``bool`` column is never nullable (true or false is all it holds). A numpy
integer column is tried as float64 with NaN, which is what the model gets when a
request leaves it out (models that take NaN take floats).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from shipml.flavours import Loaded
from shipml.flavours.base import first_line
from shipml.scoring.schema import InputSchema, allow_null, properties_schema

# dtypes whose columns cannot hold a missing value.
_NO_MISSING = ("bool",)


def nullable_fields(loaded: Loaded, schema: dict[str, Any], example: dict[str, Any]) -> set[str]:
    """The fields of ``schema`` where ``loaded`` answers a missing value (module docstring)."""
    properties = schema["properties"]
    names = list(schema.get("required") or properties)
    candidates = [
        name
        for name in names
        if str(properties[name].get("x-dtype", "float64")).rstrip("0123456789") not in _NO_MISSING
    ]
    relaxed = InputSchema(
        {
            **schema,  # its other keys (a 1-D column model's x-vector) hold as they are
            **properties_schema(
                {n: allow_null(properties[n]) if n in candidates else properties[n] for n in names}
            ),
        }
    )
    found: set[str] = set()

    def search(fields: list[str]) -> None:
        if not fields:
            return
        if _answers(loaded, relaxed, [{**example, name: None} for name in fields]):
            found.update(fields)
        elif len(fields) > 1:
            middle = len(fields) // 2
            search(fields[:middle])
            search(fields[middle:])

    search(candidates)
    return found


def with_nulls(
    loaded: Loaded,
    schema: dict[str, Any],
    example: dict[str, Any] | None,
    known: set[str] | None = None,
) -> dict[str, Any]:
    """``schema`` with ``null`` allowed in the ``known`` fields (missing in the training
    data) and wherever ``loaded`` answers a missing value, probed on ``example``. Without
    an example (a model saved or served without training data, which says no more than
    its numeric features), the probe is a row of zeros: a library that takes NaN natively
    (XGBoost, LightGBM, CatBoost, histogram gradient boosting) answers it, one that does
    not refuses it, and its fields stay required."""

    def relaxed(fields: set[str]) -> dict[str, Any]:
        properties = schema["properties"]
        return {
            **schema,
            "properties": {n: allow_null(p) if n in fields else p for n, p in properties.items()},
        }

    nullable = set(known or ())
    probe = example if isinstance(example, dict) else zero_record(schema)
    if probe is not None:
        nullable |= nullable_fields(loaded, relaxed(nullable), probe)
    return relaxed(nullable) if nullable else schema


def zero_record(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A record of zeros for a schema of numbers only (None for any other)."""
    properties = schema.get("properties") or {}
    names = list(schema.get("required") or properties)
    if not names or any(properties[n].get("type") not in ("number", "integer") for n in names):
        return None
    return dict.fromkeys(names, 0)


def _answers(loaded: Loaded, schema: InputSchema, records: list[dict[str, Any]]) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            batch = schema.batch(records, rows=False, frame=loaded.frame)
            output = np.asarray(loaded.predict(schema.model_input(batch, loaded.frame)))
        except Exception:
            return False
    if len(output) != len(records):
        return False
    return output.dtype.kind not in "fc" or bool(np.isfinite(output).all())


def example_refusal(loaded: Loaded, schema: dict[str, Any], example: dict[str, Any]) -> str | None:
    """Why ``loaded`` cannot answer ``example`` sent as the service sends it (None if it
    can). The service warms the model up with its example: a model that refuses it never
    becomes ready, so saving says so instead."""
    compiled = InputSchema(schema)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            batch = compiled.batch([example], rows=False, frame=loaded.frame)
            loaded.predict(compiled.model_input(batch, loaded.frame))
        except Exception as exc:
            return f"{type(exc).__name__}: {first_line(exc)}"
    return None
