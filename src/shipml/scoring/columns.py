"""Column types: a training column's dtype, its JSON form, and the way back.

Each field of an input schema is one :class:`Column`, compiled once from its JSON Schema
property. It knows three things:

- what a request may send (:meth:`Column.accept`: a JSON value of the field's type, an
  integral number for an integer, an ISO-8601 string for a date-time, ``null`` only where
  the model takes a missing value), refusing anything else with a message that names
  the field, the value and the type expected;
- how a column of accepted values becomes the model's column, with the exact dtype it
  was trained on (:meth:`Column.array`), once per batch;
- how a training column's dtype is written into the schema (:func:`describe_dtype`).

The JSON Schema keeps the pandas dtype in ``x-dtype`` (``category`` keeps its categories
in ``enum`` and their order in ``x-ordered``); a schema without ``x-dtype`` (written
before shipml recorded it, or from a numpy matrix) stands for float64 numbers and
object columns, as it always did.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipml.errors import InvalidInput

ARTICLE = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
}
# JSON type of each numpy kind; pandas extension dtypes are named below.
_KIND_TO_JSON = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}
_MASKED = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
_MASKED_FLOAT = {"Float32", "Float64"}
ARROW = "[pyarrow]"


def json_kind(value: Any) -> str:
    """How a JSON value reads in a message: ``a number``, ``a string``, ``null``…"""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _brief() -> reprlib.Repr:
    brief = reprlib.Repr()
    brief.maxlevel, brief.maxlist, brief.maxdict = 3, 4, 3
    brief.maxstring, brief.maxother, brief.maxlong = 30, 30, 30
    return brief


_BRIEF = _brief()


def short(value: Any) -> str:
    """A value as a message quotes it: at most 40 characters, however big or deep it is
    (``repr`` of a list nested a thousand deep raises RecursionError)."""
    text = _BRIEF.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


SEEN_VALUES = 64  # text columns with at most this many distinct strings list them


def describe_dtype(dtype: Any, values: Any = None) -> dict[str, Any]:
    """The JSON Schema property (without nullability) for a training column's dtype."""
    name = str(dtype)
    if name == "category":
        categories = dtype.categories
        kind = _KIND_TO_JSON.get(categories.dtype.kind, "string")
        return {
            "type": kind,
            "enum": [_plain(c) for c in categories.tolist()],
            "x-dtype": "category",
            "x-ordered": bool(dtype.ordered),
        }
    if name.startswith("datetime64"):
        return {"type": "string", "format": "date-time", "x-dtype": name}
    if name in _MASKED:
        return {"type": "integer", "x-dtype": name}
    if name in _MASKED_FLOAT:
        return {"type": "number", "x-dtype": name}
    if name == "boolean":
        return {"type": "boolean", "x-dtype": name}
    if name in ("str", "string"):
        return {"type": "string", "x-dtype": name, **_seen(values)}
    kind = getattr(dtype, "kind", "O")
    if name.endswith(ARROW):  # pandas' pyarrow-backed dtypes (dtype_backend="pyarrow")
        if kind == "U":
            return {"type": "string", "x-dtype": name}
        if kind == "M":
            return {"type": "string", "format": "date-time", "x-dtype": name}
    if kind in _KIND_TO_JSON:
        return {"type": _KIND_TO_JSON[kind], "x-dtype": name}
    json_type = _object_type(values)
    return {
        "type": json_type,
        "x-dtype": "object",
        **(_seen(values) if json_type == "string" else {}),
    }


def _seen(values: Any) -> dict[str, Any]:
    """``x-values``: the strings a text column held in training, when there are few.

    Documentation, not a check: the service passes other strings on to the model, which
    decides. A model that refuses strings it never saw (a one-hot encoder with
    ``handle_unknown="error"``) gets them listed as the field's ``enum`` in the OpenAPI
    document (shipml.serving.contract finds out at load)."""
    if values is None:
        return {}
    seen: set[str] = set()
    for value in values:
        if isinstance(value, str):
            seen.add(value)
            if len(seen) > SEEN_VALUES:
                return {}
    return {"x-values": sorted(seen)} if seen else {}


def _object_type(values: Any) -> str:
    """An object column's JSON type, from the kinds of value it holds."""
    kinds = set()
    for value in values if values is not None else ():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, bool | np.bool_):
            kinds.add("boolean")
        elif isinstance(value, int | np.integer):
            kinds.add("integer")
        elif isinstance(value, float | np.floating):
            kinds.add("number")
        else:
            kinds.add("string")
    if kinds == {"integer", "number"}:
        return "number"
    return kinds.pop() if len(kinds) == 1 else "string"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class Column:
    """One field: what a request may send and what the model receives (module docstring)."""

    def __init__(self, name: str, prop: dict[str, Any]) -> None:
        self.name = name
        kinds = prop.get("type", "number")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        self.nullable = "null" in kinds
        self.kind: str = next((k for k in kinds if k != "null"), "string")
        self.dtype: str = prop.get("x-dtype") or ("float64" if self.numeric else "object")
        self.categories: list[Any] | None = None
        if self.dtype == "category":
            self.categories = [c for c in prop.get("enum", []) if c is not None]
        self.ordered = bool(prop.get("x-ordered", False))
        self._known = frozenset(self.categories or ())
        self.datetime = self.dtype.startswith("datetime64") or (
            self.dtype.endswith(ARROW) and self.dtype.startswith(("timestamp[", "date"))
        )
        self._python = _PYTHON_TYPES.get(self.kind, (str,))
        self._bounds = _int_bounds(self.dtype) if self.kind == "integer" else None
        self._pandas: Any = None  # the pandas dtype, made on first use (pandas is lazy)

    @property
    def numeric(self) -> bool:
        return self.kind in ("number", "integer")

    @property
    def bounds(self) -> tuple[int, int] | None:
        """The smallest and largest integer the model's column holds (integer fields)."""
        return self._bounds

    @property
    def plain_number(self) -> bool:
        """A numpy float or int column: its values fit a float64 matrix as they are."""
        return self.numeric and self.dtype.rstrip("0123456789") in ("float", "int", "uint")

    def expected(self) -> str:
        if self.datetime:
            return f"an ISO-8601 date-time string (the model takes {self.dtype})"
        if self.categories is not None:
            return f"{ARTICLE[self.kind]} (a category)"
        return ARTICLE[self.kind]

    def accept(self, value: Any, where: str) -> Any:
        """``value`` as the model's column takes it; raise :class:`InvalidInput` if it cannot."""
        if value is None:
            if self.nullable:
                return None
            raise InvalidInput(
                f"field {self.name!r}{where} cannot be null: the model cannot take a missing "
                f"value there; send {self.expected()}"
            )
        kind = type(value)
        if kind is bool and self.kind != "boolean":
            raise self._wrong(value, where)
        rounded = False
        if kind not in self._python:
            if kind is float and self.kind == "integer" and value.is_integer():
                value = int(value)  # 3.0 is the integer 3 (JavaScript cannot tell them apart)
                # beyond 2**53 the float may be an integer literal rounded (JSON's
                # -2**63 - 1 parses as -2**63): only values strictly inside are sure
                rounded = abs(value) > 2**53
            else:
                raise self._wrong(value, where)
        bounds = self._bounds
        if bounds is not None and (
            not bounds[0] <= value <= bounds[1] or (rounded and value in bounds)
        ):
            raise InvalidInput(
                f"field {self.name!r}{where} must be an integer from {bounds[0]} to "
                f"{bounds[1]} (the model takes {self.dtype}), got {value}"
            )
        if self.datetime:
            return self._timestamp(value, where)
        return value

    def _wrong(self, value: Any, where: str) -> InvalidInput:
        return InvalidInput(
            f"field {self.name!r}{where} must be {self.expected()}, "
            f"got {json_kind(value)} {short(value)}"
        )

    def _timestamp(self, value: str, where: str) -> Any:
        import pandas as pd  # type: ignore[import-untyped]

        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise self._wrong(value, where) from None
        if stamp is pd.NaT:
            raise self._wrong(value, where)
        dtype = self.pandas_dtype()
        arrow = getattr(dtype, "pyarrow_dtype", None)  # timestamp[…][pyarrow]
        zone = getattr(dtype, "tz", None) or getattr(arrow, "tz", None)
        if zone is None and stamp.tz is not None:
            raise InvalidInput(
                f"field {self.name!r}{where} must be a date-time without a UTC offset (the "
                f"model was trained on local date-times, {self.dtype}), got {short(value)}"
            )
        if zone is not None:
            stamp = stamp.tz_localize(zone) if stamp.tz is None else stamp.tz_convert(zone)
        return stamp

    def pandas_dtype(self) -> Any:
        if self._pandas is None:
            import pandas as pd  # on use: pandas only for models that take a DataFrame

            if self.categories is not None:
                self._pandas = pd.CategoricalDtype(self.categories, ordered=self.ordered)
            else:
                self._pandas = pd.api.types.pandas_dtype(self.dtype)
        return self._pandas

    def array(self, values: Sequence[Any]) -> Any:
        """The model's column for accepted ``values``, in the training dtype."""
        import pandas as pd  # on use: pandas only for models that take a DataFrame

        dtype = self.pandas_dtype()
        if self.categories is not None:
            known = self._known
            unknown = [v for v in values if v is not None and v not in known]
            if unknown:  # kept as themselves: the model decides what an unseen category means
                extended = self.categories + list(dict.fromkeys(unknown))
                dtype = pd.CategoricalDtype(extended, ordered=self.ordered)
            return pd.Categorical(values, dtype=dtype)
        if self.plain_number:
            if self.kind == "integer" and not self.nullable:
                return np.array(values, dtype=dtype)
            column = np.array(values, dtype=np.float64)  # None becomes NaN
            if dtype.kind == "f":
                return column.astype(dtype, copy=False)
            # A missing value in an integer column: the batch's column is float64 with
            # NaN (the model took NaN there when it was saved), else the training dtype.
            return column if np.isnan(column).any() else column.astype(dtype)
        if self.dtype == "bool":
            return np.array(values, dtype=bool)
        if self.dtype == "object":
            column = np.empty(len(values), dtype=object)
            column[:] = [math.nan if v is None else v for v in values]
            return column
        return pd.array(values, dtype=dtype)

    def matrix_value(self, value: Any) -> Any:
        """How a value sits in an object matrix (models fitted on numpy arrays)."""
        return math.nan if value is None else value


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (float, int),
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
}


def _int_bounds(dtype: str) -> tuple[int, int] | None:
    name = dtype.lower().removesuffix(ARROW)
    if name.rstrip("0123456789") not in ("int", "uint"):
        return None
    info = np.iinfo(np.dtype(name))
    return int(info.min), int(info.max)


def frame_builder(columns: Sequence[Column]) -> Callable[[list[list[Any]]], Any]:
    """One DataFrame per batch from per-column lists, in the training dtypes."""
    names = [c.name for c in columns]

    def build(values: list[list[Any]]) -> Any:
        import pandas as pd  # on use: pandas only for models that take a DataFrame

        data = {c.name: c.array(v) for c, v in zip(columns, values, strict=True)}
        return pd.DataFrame(data, columns=names, copy=False)

    return build
