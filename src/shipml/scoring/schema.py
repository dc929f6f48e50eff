"""Input schemas: inferred once from training data, enforced on every request.

A schema is a JSON Schema object (``{"type": "object", "properties": …, "required": …}``)
whose ``required`` list is the model's feature order (a JSON array keeps its order
everywhere; an object's key order need not survive a round trip). It is stored in the
manifest, shown by ``/info`` and ``/openapi.json``, and compiled here into an
:class:`InputSchema` that checks request records and turns a batch of them into model
input, with one precise error per problem. Each field is a
:class:`~shipml.scoring.columns.Column`: its JSON type, whether it may be ``null`` and
the dtype the model was trained on.

A batch takes one of three forms, decided once per schema:

- all fields plain numbers (float or int columns): a float64 matrix, straight from the
  parsed JSON (a ``null`` becomes NaN where allowed); a model fitted on a DataFrame
  gets it as one, with its training dtypes;
- a model fitted on a numpy array with other fields: an object matrix (a missing value
  is NaN, as in pandas);
- a model fitted on a DataFrame with other fields: per-column lists, turned into one
  DataFrame per batch with the training dtypes (category, bool, nullable integers,
  strings, date-times), column by column.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipml.errors import InvalidInput, ModelDefinitionError
from shipml.scoring.columns import Column, describe_dtype, frame_builder, json_kind, short

JSON_TYPES = ("number", "integer", "string", "boolean")
VECTOR = "x-vector"  # schema key: the model takes its one field as a 1-D column


def object_schema(fields: dict[str, str]) -> dict[str, Any]:
    """The JSON Schema for records with ``fields`` (name → JSON type), in that order."""
    return properties_schema({name: {"type": kind} for name, kind in fields.items()})


def properties_schema(properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def allow_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``prop`` with ``null`` allowed (JSON Schema 2020-12, as OpenAPI 3.1 uses it)."""
    kind = prop.get("type", "number")
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if "null" in kinds:
        return prop
    nullable = {**prop, "type": [*kinds, "null"]}
    if "enum" in prop:
        nullable["enum"] = [*prop["enum"], None]
    return nullable


@dataclass(slots=True)
class Columns:
    """A batch of records as one list of values per field (the DataFrame form)."""

    values: list[list[Any]]
    count: int

    def __len__(self) -> int:
        return self.count

    def rows(self, start: int, stop: int) -> Columns:
        """Rows ``[start, stop)``: a big request goes to the model in chunks of them."""
        stop = min(stop, self.count)
        return Columns([column[start:stop] for column in self.values], max(0, stop - start))


class InputSchema:
    """A compiled schema: validates records and converts them to model input."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        properties = schema["properties"]
        order = schema.get("required") or list(properties)
        self.columns = [Column(name, properties[name]) for name in order]
        self.fields: dict[str, str] = {c.name: c.kind for c in self.columns}
        self.names = tuple(self.fields)
        self.nullable = tuple(c.name for c in self.columns if c.nullable)
        self.numeric = all(c.plain_number for c in self.columns)
        self._by_name = {c.name: c for c in self.columns}
        # The fast path of ``matrix``: all-"number" schemas (most feature tables) need
        # only "every value is an int or a float" per field; anything else, or any
        # problem, goes through the precise checks that name what is wrong.
        self._all_numbers = self.numeric and all(c.kind == "number" for c in self.columns)
        self._float_frame = all(c.dtype == "float64" for c in self.columns)
        self._build = frame_builder(self.columns)
        # One field the model takes as a 1-D column (a text pipeline fitted on a list or a
        # Series of texts), not as a one-column table.
        self._vector = bool(schema.get(VECTOR)) and len(self.columns) == 1
        names = self.names
        self._values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],)
        )

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in self.fields.items())

    # -- checking ----------------------------------------------------------------------

    def record_values(self, record: Any, index: int | None) -> list[Any]:
        """The accepted values of ``record`` in field order; raise naming the first problem."""
        where = "" if index is None else f" in record {index}"
        if not isinstance(record, dict):
            raise InvalidInput(
                f"expected a JSON object with fields {self.describe()}{where}, "
                f"got {json_kind(record)}"
            )
        values = []
        for column in self.columns:
            if column.name not in record:
                raise InvalidInput(
                    f"missing field {column.name!r}{where}; expected fields: {self.describe()}"
                )
            values.append(column.accept(record[column.name], where))
        if len(record) != len(self.names):
            for name in record:
                if name not in self._by_name:
                    close = difflib.get_close_matches(name, self.names, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise InvalidInput(
                        f"unknown field {name!r}{where}{hint}; expected fields: {self.describe()}"
                    )
        return values

    def check_record(self, record: Any, index: int | None) -> None:
        """Raise :class:`InvalidInput` naming the first problem with ``record``."""
        self.record_values(record, index)

    def check_row(self, row: Any, index: int) -> None:
        self._row_values(row, index)

    def _row_values(self, row: Any, index: int) -> list[Any]:
        if not isinstance(row, list) or len(row) != len(self.names):
            raise InvalidInput(
                f"row {index} must be a list of {len(self.names)} values in the order "
                f"{', '.join(self.names)}; got {json_kind(row)} {short(row)}"
            )
        return self.record_values(dict(zip(self.names, row, strict=True)), index)

    def _table(self, items: Sequence[Any], rows: bool) -> list[list[Any]]:
        """Every item checked and converted: one list of values per record, in order."""
        if rows:
            return [self._row_values(row, i) for i, row in enumerate(items)]
        index: Callable[[int], int | None] = (lambda i: None) if len(items) == 1 else int
        return [self.record_values(record, index(i)) for i, record in enumerate(items)]

    def _number_table(self, items: Sequence[Any], rows: bool) -> list[Any] | None:
        """The values of ``items`` if every one is a well-formed all-number record or row;
        None otherwise (the caller then finds and names the problem)."""
        width, values = len(self.names), self._values
        table: list[Any] = []
        row: Sequence[Any]
        for item in items:
            if rows:
                if type(item) is not list or len(item) != width:
                    return None
                row = item
            else:
                if type(item) is not dict or len(item) != width:
                    return None
                try:
                    row = values(item)
                except KeyError:
                    return None
            for value in row:
                kind = type(value)
                if kind is not float and kind is not int:  # bool is neither: it fails here
                    return None
            table.append(row)
        return table

    # -- converting --------------------------------------------------------------------

    def matrix(self, items: Sequence[Any], rows: bool) -> np.ndarray:
        """Validate ``items`` (records, or rows in feature order) and stack them: float64
        when every field is a plain number (``null`` → NaN), else objects."""
        if self._all_numbers:
            fast = self._number_table(items, rows)
            if fast is not None:
                return np.array(fast, dtype=np.float64)
        table = self._table(items, rows)
        if self.numeric:
            return np.array(table, dtype=np.float64)  # None (where allowed) becomes NaN
        matrix = np.empty((len(table), len(self.names)), dtype=object)
        for i, values in enumerate(table):
            matrix[i] = [
                column.matrix_value(v) for column, v in zip(self.columns, values, strict=True)
            ]
        return matrix

    def batch(self, items: Sequence[Any], rows: bool, frame: bool) -> Any:
        """One request's model-ready data: a matrix, or :class:`Columns` for a DataFrame
        with other than plain numbers (built per batch by :meth:`model_input`)."""
        if self.numeric or not frame:
            return self.matrix(items, rows)
        table = self._table(items, rows)
        return Columns([list(column) for column in zip(*table, strict=True)], len(table))

    def concat(self, parts: list[Any]) -> Any:
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], Columns):
            merged: list[list[Any]] = [[] for _ in self.names]
            for part in parts:
                for column, more in zip(merged, part.values, strict=True):
                    column.extend(more)
            return Columns(merged, sum(part.count for part in parts))
        return np.concatenate(parts)

    def model_input(self, data: Any, frame: bool) -> Any:
        """What the model is called with: ``data`` as is, or one DataFrame in the training
        dtypes for a model fitted on a DataFrame; its one column for a model fitted on one."""
        if self._vector:
            return self._column(data, frame)
        if not frame:
            if type(data) is Columns:
                return self.matrix([list(row) for row in zip(*data.values, strict=True)], True)
            return data
        if type(data) is Columns:
            return self._build(data.values)
        import pandas as pd  # type: ignore[import-untyped]  # only DataFrame-fitted models

        if self._float_frame:
            return pd.DataFrame(data, columns=list(self.names), copy=False)
        return self._build([data[:, i] for i in range(data.shape[1])])

    def _column(self, data: Any, frame: bool) -> Any:
        self._vector = False
        try:
            table = self.model_input(data, frame)
        finally:
            self._vector = True
        return table.iloc[:, 0] if frame else table[:, 0]

    def table(self, columns: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The matrix :meth:`matrix` would make, from already-checked features (the Open
        Inference Protocol's tensors): a numeric ``[N, F]`` matrix, or one column per
        field. Float64 when every field is a number, else objects holding the same Python
        values a parsed record would."""
        if isinstance(columns, np.ndarray):
            return columns.astype(np.float64, copy=False)
        if self.numeric:
            return np.column_stack(columns).astype(np.float64, copy=False)
        table = np.empty((len(columns[0]), len(columns)), dtype=object)
        for j, column in enumerate(columns):
            table[:, j] = column
        return table


def infer_schema(
    training_data: Any = None,
    feature_names: Sequence[str] | None = None,
    input_example: Any = None,
    model_fields: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Infer the input schema from whatever the training script has to hand."""
    if input_example is not None:
        record = input_example[0] if isinstance(input_example, list) else input_example
        if not isinstance(record, dict):
            raise ModelDefinitionError(
                "input_example must be a record (a dict) or a list of records"
            )
        return object_schema({name: _json_type_of_value(v) for name, v in record.items()})
    if training_data is not None:
        columns = _columns(training_data, feature_names)
        if columns is not None:
            return properties_schema(columns)
    if feature_names:
        return object_schema(dict.fromkeys(feature_names, "number"))
    return object_schema(model_fields) if model_fields else None


def one_column(
    data: Any, feature_names: Sequence[str] | None
) -> tuple[Any, Sequence[str] | None, bool]:
    """1-D training data (a Series, a list of texts, a 1-D array) as a one-column table,
    its field named after the Series, ``feature_names[0]`` or ``input``; the last item
    says whether it was 1-D (the model then gets a 1-D column, as it was fitted on)."""
    if data is None or isinstance(data, dict) or hasattr(data, "columns"):
        return data, feature_names, False
    if hasattr(data, "to_frame") and getattr(data, "ndim", 2) == 1:  # a pandas Series
        name = data.name if data.name is not None else None
        name = str(name) if name is not None else (feature_names or ["input"])[0]
        return data.to_frame(name), None, True
    array = as_matrix(data)
    if array.ndim != 1:
        return data, feature_names, False
    return array.reshape(-1, 1), [(feature_names or ["input"])[0]], True


def missing_columns(training_data: Any, names: Sequence[str]) -> set[str]:
    """The columns of ``training_data`` that hold a missing value (NaN, None, NA, NaT)."""
    try:
        if hasattr(training_data, "isna"):
            flags = by_name(training_data, names).isna().any()
            return {str(name) for name, flag in flags.items() if flag}
        matrix = (
            np.column_stack([np.asarray(training_data[n]) for n in names])
            if isinstance(training_data, dict)
            else as_matrix(training_data)
        )
    except (KeyError, TypeError, ValueError):
        return set()
    if matrix.dtype.kind == "f":
        flags = np.isnan(matrix).any(axis=0)
    elif matrix.dtype == object:
        flags = np.array([any(_is_missing(v) for v in matrix[:, i]) for i in range(len(names))])
    else:
        return set()
    return {name for name, flag in zip(names, flags, strict=True) if flag}


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def example_record(schema: dict[str, Any], training_data: Any) -> dict[str, Any] | None:
    """A training row as a record for warm-up and the playground: the first complete one
    (no missing value), else the first row with its missing values as ``null``."""
    names = list(schema.get("required") or schema["properties"])
    try:
        if hasattr(training_data, "iloc"):
            frame = by_name(training_data, names)
            complete = frame.notna().all(axis=1).to_numpy()
            position = int(np.argmax(complete)) if complete.any() else 0
            # Column by column: a row across columns would make integers floats.
            row = [frame[name].iloc[position] for name in names]
        elif isinstance(training_data, dict):
            row = [training_data[name][0] for name in names]
        else:
            matrix = as_matrix(training_data)
            complete = [not any(_is_missing(v) for v in r) for r in matrix.tolist()]
            row = matrix[complete.index(True) if any(complete) else 0].tolist()
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(row, list) or len(row) != len(names):
        return None
    return {name: plain(value) for name, value in zip(names, row, strict=True)}


def fingerprint(training_data: Any) -> dict[str, Any]:
    """A sha256 of the training data, so a version records exactly what it learnt from."""
    if training_data is None:
        return {}
    digest = hashlib.sha256()
    if hasattr(training_data, "to_numpy"):
        array = training_data.to_numpy()
    elif isinstance(training_data, dict):
        array = np.column_stack([np.asarray(v) for v in training_data.values()])
    else:
        array = np.asarray(training_data)
    if array.dtype == object or array.dtype.kind in "USM":
        for value in array.ravel():
            digest.update(str(value).encode() + b"\0")
    else:
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(array.shape).encode())
    return {"fingerprint": "sha256:" + digest.hexdigest(), "rows": int(array.shape[0])}


def _columns(data: Any, feature_names: Sequence[str] | None) -> dict[str, dict[str, Any]] | None:
    if hasattr(data, "dtypes") and hasattr(data, "columns"):  # a pandas DataFrame
        return {str(c): describe_dtype(data.dtypes[c], data[c].to_numpy()) for c in data.columns}
    if isinstance(data, dict):
        return {str(k): {"type": _json_type_of_dtype(np.asarray(v))} for k, v in data.items()}
    array = as_matrix(data)
    if array.ndim != 2:
        return None
    names = list(feature_names or [f"f{i}" for i in range(array.shape[1])])
    if len(names) != array.shape[1]:
        raise ModelDefinitionError(
            f"feature_names has {len(names)} names but the data has {array.shape[1]} columns"
        )
    if array.dtype == object:
        return {
            name: {"type": describe_dtype(array.dtype, array[:, i])["type"]}
            for i, name in enumerate(names)
        }
    return {name: {"type": _json_type_of_dtype(array)} for name in names}


def by_name(frame: Any, names: Sequence[str]) -> Any:
    """The columns of ``frame`` the schema calls ``names``, with string column names (the
    schema names ``pd.DataFrame(X)``'s integer columns "0", "1", …)."""
    if all(isinstance(c, str) for c in frame.columns):
        return frame[list(names)]
    return frame.rename(columns=str)[list(names)]


def as_matrix(data: Any) -> np.ndarray:
    """``data`` as a 2-D array. Rows given as Python lists (CatBoost's examples fit on
    them) keep each value's own type: numpy would turn ``["a", 1]`` into two strings."""
    if isinstance(data, list | tuple):
        array = np.asarray(data)
        if array.dtype.kind in "US":
            return np.array(data, dtype=object)
        return array
    return np.asarray(data)


def _json_type_of_dtype(array: np.ndarray) -> str:
    if array.dtype == object:
        return str(describe_dtype(array.dtype, array.ravel())["type"])
    return {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}.get(
        array.dtype.kind, "string"
    )


def _json_type_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def plain(value: Any) -> Any:
    """A training value as JSON: numpy scalars as Python ones, missing as None, date-times
    as ISO-8601 strings."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat") and not isinstance(value, str):  # Timestamp, datetime
        return value.isoformat()
    return value
