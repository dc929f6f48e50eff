"""Input schemas: inferred once from training data, enforced on every request.

A schema is a JSON Schema object (``{"type": "object", "properties": …, "required": …}``)
whose ``required`` list is the model's feature order (a JSON array keeps its order
everywhere; an object's key order need not survive a round trip). It is stored in the
manifest, shown by ``/info`` and ``/openapi.json``, and compiled here into an
:class:`InputSchema` that turns request records into a numpy matrix with one precise
error per problem.
"""

from __future__ import annotations

import difflib
import hashlib
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipml.errors import InvalidInput

JSON_TYPES = ("number", "integer", "string", "boolean")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "number": (float, int),
    "integer": (int,),
    "string": (str,),
    "boolean": (bool,),
}
_ARTICLE = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
}


def object_schema(fields: dict[str, str]) -> dict[str, Any]:
    """The JSON Schema for records with ``fields`` (name → JSON type), in that order."""
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in fields.items()},
        "required": list(fields),
        "additionalProperties": False,
    }


class InputSchema:
    """A compiled schema: validates records and converts them to model input."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        properties = schema["properties"]
        order = schema.get("required") or list(properties)
        self.fields: dict[str, str] = {
            name: properties[name].get("type", "number") for name in order
        }
        self.names = tuple(self.fields)
        self.numeric = all(kind in ("number", "integer") for kind in self.fields.values())
        self._allowed = {name: _PYTHON_TYPES[kind] for name, kind in self.fields.items()}
        # The fast path of ``matrix``: all-"number" schemas (most feature tables) need
        # only "every value is an int or a float" per field; anything else, or any
        # problem, goes through the precise checks that name what is wrong.
        self._all_numbers = all(kind == "number" for kind in self.fields.values())
        names = self.names
        self._values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],)
        )

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in self.fields.items())

    def check_record(self, record: Any, index: int | None) -> None:
        """Raise :class:`InvalidInput` naming the first problem with ``record``."""
        where = "" if index is None else f" in record {index}"
        if not isinstance(record, dict):
            raise InvalidInput(
                f"expected a JSON object with fields {self.describe()}{where}, "
                f"got {_json_kind(record)}"
            )
        for name, allowed in self._allowed.items():
            if name not in record:
                raise InvalidInput(
                    f"missing field {name!r}{where}; expected fields: {self.describe()}"
                )
            value = record[name]
            if not isinstance(value, allowed) or (
                (value is True or value is False) and (bool not in allowed)
            ):
                raise InvalidInput(
                    f"field {name!r}{where} must be {_ARTICLE[self.fields[name]]}, "
                    f"got {_json_kind(value)} {_short(value)}"
                )
        if len(record) != len(self.names):
            for name in record:
                if name not in self.fields:
                    close = difflib.get_close_matches(name, self.names, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise InvalidInput(
                        f"unknown field {name!r}{where}{hint}; expected fields: {self.describe()}"
                    )

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

    def check_row(self, row: Any, index: int) -> None:
        if not isinstance(row, list) or len(row) != len(self.names):
            raise InvalidInput(
                f"row {index} must be a list of {len(self.names)} values in the order "
                f"{', '.join(self.names)}; got {_json_kind(row)} {_short(row)}"
            )
        self.check_record(dict(zip(self.names, row, strict=True)), index)

    def matrix(self, items: Sequence[Any], rows: bool) -> np.ndarray:
        """Validate ``items`` (records, or rows in feature order) and stack them."""
        if self._all_numbers:
            fast = self._number_table(items, rows)
            if fast is not None:
                return np.array(fast, dtype=np.float64)
        single = len(items) == 1
        if rows:
            for i, row in enumerate(items):
                self.check_row(row, i)
            table = items
        else:
            for i, record in enumerate(items):
                self.check_record(record, None if single else i)
            names = self.names
            table = [[record[name] for name in names] for record in items]
        return np.array(table, dtype=np.float64 if self.numeric else object)

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
    model: Any = None,
) -> dict[str, Any] | None:
    """Infer the input schema from whatever the training script has to hand."""
    if input_example is not None:
        record = input_example[0] if isinstance(input_example, list) else input_example
        if not isinstance(record, dict):
            raise InvalidInput("input_example must be a record (a dict) or a list of records")
        return object_schema({name: _json_type_of_value(v) for name, v in record.items()})
    if training_data is not None:
        columns = _columns(training_data, feature_names)
        if columns is not None:
            return object_schema(columns)
    names = feature_names or _model_feature_names(model)
    if names:
        return object_schema(dict.fromkeys(names, "number"))
    return None


def example_record(schema: dict[str, Any], training_data: Any) -> dict[str, Any] | None:
    """The first training row as a record: used for warm-up and in the playground."""
    names = list(schema["properties"])
    try:
        if hasattr(training_data, "iloc"):
            row = training_data.iloc[0].tolist()
        elif isinstance(training_data, dict):
            row = [training_data[name][0] for name in names]
        else:
            row = np.asarray(training_data)[0].tolist()
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(row, list) or len(row) != len(names):
        return None
    return {name: _plain(value) for name, value in zip(names, row, strict=True)}


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
    if array.dtype == object or array.dtype.kind in "US":
        for value in array.ravel():
            digest.update(str(value).encode() + b"\0")
    else:
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(array.shape).encode())
    return {"fingerprint": "sha256:" + digest.hexdigest(), "rows": int(array.shape[0])}


def _columns(data: Any, feature_names: Sequence[str] | None) -> dict[str, str] | None:
    if hasattr(data, "dtypes") and hasattr(data, "columns"):  # a pandas DataFrame
        return {
            str(c): _json_type_of_dtype(
                np.dtype(str(data.dtypes[c]))
                if str(data.dtypes[c]) != "object"
                else np.dtype(object)
            )
            for c in data.columns
        }
    if isinstance(data, dict):
        return {str(k): _json_type_of_dtype(np.asarray(v).dtype) for k, v in data.items()}
    array = np.asarray(data)
    if array.ndim != 2:
        return None
    names = list(feature_names or [f"f{i}" for i in range(array.shape[1])])
    if len(names) != array.shape[1]:
        raise InvalidInput(
            f"feature_names has {len(names)} names but the data has {array.shape[1]} columns"
        )
    return dict.fromkeys(names, _json_type_of_dtype(array.dtype))


def _model_feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    count = getattr(model, "n_features_in_", None)
    return [f"f{i}" for i in range(count)] if isinstance(count, int) else None


def _json_type_of_dtype(dtype: np.dtype[Any]) -> str:
    return {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}.get(dtype.kind, "string")


def _json_type_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_kind(value: Any) -> str:
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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
