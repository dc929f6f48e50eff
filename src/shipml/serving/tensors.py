"""Tensors as the Open Inference Protocol carries them: datatypes, JSON data, binary data.

A tensor arrives either as JSON (``"data"``, flat or nested, row-major) or, with Triton's
binary tensor data extension, as raw bytes after the JSON header of the body
(``binary_data_size`` says how many): numbers little-endian in their native size, BOOL one
byte each, BYTES as a 4-byte little-endian length before each element. Numbers are read
with one ``numpy`` call, never element by element; BYTES elements are strings (UTF-8)
because that is what a model's string features are.

Every problem raises :class:`TensorError` (400) naming the tensor, so a client's exception
says which input is wrong and how.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipml.errors import ShipmlError

BYTES = "BYTES"
NUMERIC: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*NUMERIC, BYTES)
_LENGTH = 4  # bytes of the length before each BYTES element
MAX_DIMENSIONS = 32  # numpy's limit is 64; no model here takes more than 2


class TensorError(ShipmlError):
    """A tensor is malformed or does not fit what it declares (shape, datatype, size)."""

    status = 400
    code = "invalid_tensor"


@dataclass(slots=True)
class Tensor:
    """One tensor: ``array`` has the tensor's shape; BYTES are an object array of ``str``.
    ``labels`` names the columns of an output of class scores (for classification)."""

    name: str
    datatype: str
    array: np.ndarray
    labels: np.ndarray | None = None


def check_datatype(name: str, datatype: Any) -> str:
    if datatype not in DATATYPES:
        supported = ", ".join(DATATYPES)
        hint = " (BF16 has no numpy type: send FP32)" if datatype == "BF16" else ""
        raise TensorError(
            f"input {name!r}: datatype {datatype!r} is not supported{hint}; use one of {supported}"
        )
    return str(datatype)


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise TensorError(
            f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r:.60}"
        )
    if len(shape) > MAX_DIMENSIONS:
        raise TensorError(f"input {name!r} has {len(shape)} dimensions; at most {MAX_DIMENSIONS}")
    return tuple(shape)


def from_json(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """The array that JSON ``data`` (flat or nested, row-major) holds, checked against
    ``datatype`` and ``shape``. Numbers may be sent for any numeric datatype as long as
    they fit it (``1.0`` for INT64, yes; ``1.5``, no); strings only for BYTES."""
    if not isinstance(data, list):
        raise TensorError(f"input {name!r}: 'data' must be a JSON array, got {_kind(data)}")
    if datatype == BYTES:
        values = _flatten(data)
        for value in values:
            if type(value) is not str:
                raise TensorError(
                    f"input {name!r} is BYTES: its data must be strings, got {_kind(value)} "
                    f"{value!r:.40}"
                )
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return _shaped(name, array, shape)
    try:
        raw = np.asarray(data)
        if raw.dtype.kind == "O" and NUMERIC[datatype].kind == "f":
            flat = _flatten(data)
            if all(type(value) in (int, float) for value in flat):  # integers beyond 64 bits
                raw = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise TensorError(
            f"input {name!r}: 'data' is not a regular array of numbers (rows of unequal length?)"
        ) from None
    dtype = NUMERIC[datatype]
    kind = raw.dtype.kind
    if raw.size and not (kind == "b" if dtype.kind == "b" else kind in "iuf"):
        wanted = "true/false" if dtype.kind == "b" else "numbers"
        raise TensorError(
            f"input {name!r} is {datatype}: its data must be {wanted}, got {_dtype_kind(kind)}"
        )
    if kind != "b" and raw.size:
        flat = _flatten(data)
        if any(type(value) is bool for value in flat):  # numpy would read true as 1
            raise TensorError(
                f"input {name!r} is {datatype}: its data must be numbers, not true/false"
            )
        if dtype.kind in "iu" and kind == "f":  # integers and floats: keep the integers exact
            raw = _exact_integers(name, datatype, flat).reshape(raw.shape)
    return _shaped(name, fit(name, datatype, raw), shape)


def _exact_integers(name: str, datatype: str, values: list[Any]) -> np.ndarray:
    """Integer data that came with floats (``[1.0, 18446744073709551614]``): numpy would
    make all of it floats and round the large integers; here each value is checked as it
    was sent. A float beyond 2**53 may be an integer rounded by the JSON parser (-2**63 - 1
    parses as the float -2**63): only what is strictly inside the range is sure."""
    info = np.iinfo(NUMERIC[datatype])
    exact: list[int] = []
    for value in values:
        if type(value) is float:
            if not (math.isfinite(value) and value.is_integer()):
                raise TensorError(f"input {name!r} is {datatype}: its data holds non-integers")
            if abs(value) > 2**53 and not info.min < value < info.max:
                exact.append(info.max + 1)  # outside, whichever way it was rounded
                continue
        exact.append(int(value))
    if min(exact) < info.min or max(exact) > info.max:
        raise TensorError(
            f"input {name!r}: a value is outside the range of {datatype} ({info.min} to {info.max})"
        )
    return np.array(exact, dtype=NUMERIC[datatype])


def fit(name: str, datatype: str, raw: np.ndarray) -> np.ndarray:
    """``raw`` cast to ``datatype``, refusing values the cast would change."""
    dtype = NUMERIC[datatype]
    if dtype.kind in "iu" and raw.size:
        if raw.dtype.kind == "f" and (not np.isfinite(raw).all() or (raw != np.trunc(raw)).any()):
            raise TensorError(f"input {name!r} is {datatype}: its data holds non-integers")
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise TensorError(
                f"input {name!r}: a value is outside the range of {datatype} "
                f"({info.min} to {info.max})"
            )
    if dtype.kind == "f" and raw.size:
        with np.errstate(over="ignore"):
            cast = raw.astype(dtype)
        if not np.isfinite(cast).all():
            raise TensorError(f"input {name!r}: a value is too large for {datatype}")
        return cast
    return raw.astype(dtype)


def from_binary(name: str, datatype: str, shape: tuple[int, ...], raw: memoryview) -> np.ndarray:
    """The array that ``raw`` (this tensor's bytes of the body) holds."""
    count = math.prod(shape)
    if datatype == BYTES:
        values = deserialize_bytes(name, raw)
        if len(values) != count:
            raise TensorError(
                f"input {name!r}: shape {list(shape)} needs {count} BYTES elements, "
                f"its binary data holds {len(values)}"
            )
        array = np.empty(count, dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = NUMERIC[datatype]
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} "
            f"bytes, its binary_data_size is {len(raw)}"
        )
    if dtype.kind == "b" and count and np.frombuffer(raw, dtype=np.uint8).max() > 1:
        raise TensorError(f"input {name!r} is BOOL: each element must be a byte 0 or 1")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def deserialize_bytes(name: str, raw: memoryview) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes (UTF-8)."""
    values: list[str] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + _LENGTH > end:
            raise TensorError(f"input {name!r}: its BYTES data ends inside an element's length")
        size = int.from_bytes(raw[offset : offset + _LENGTH], "little")
        offset += _LENGTH
        if offset + size > end:
            raise TensorError(
                f"input {name!r}: a BYTES element says {size} bytes but only {end - offset} remain"
            )
        try:
            values.append(str(raw[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise TensorError(f"input {name!r}: a BYTES element is not UTF-8 text") from None
        offset += size
    return values


def serialize_bytes(values: list[Any]) -> bytes:
    parts: list[bytes] = []
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(len(data).to_bytes(_LENGTH, "little"))
        parts.append(data)
    return b"".join(parts)


_NAMES = {dtype: name for name, dtype in NUMERIC.items()}


def datatype_of(array: np.ndarray) -> str | None:
    """The datatype ``array`` is sent as: its own if the protocol has it, BYTES for text
    and objects, None for numbers it has no type for (the caller converts them)."""
    if array.dtype.kind in "biuf":
        return _NAMES.get(array.dtype.newbyteorder("<"))
    return BYTES


def json_data(array: np.ndarray) -> Any:
    """The flat JSON data of an output: numeric arrays as they are (orjson writes them)."""
    if array.dtype.kind in "biuf":
        return np.ascontiguousarray(array).reshape(-1)
    return [str(value) for value in array.reshape(-1).tolist()]


def binary_data(array: np.ndarray) -> bytes:
    if array.dtype.kind in "biuf":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return serialize_bytes(array.reshape(-1).tolist())


def _shaped(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    count = math.prod(shape)
    if array.size != count:
        raise TensorError(
            f"input {name!r}: shape {list(shape)} needs {count} values, its data holds {array.size}"
        )
    return array.reshape(shape)


def _flatten(data: list[Any]) -> list[Any]:
    """Nested lists' elements in row-major order (iterative: JSON may nest deeper than
    Python's recursion limit)."""
    if not data or not isinstance(data[0], list):
        return data
    values: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            values.append(value)
        else:
            stack.pop()
    return values


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _dtype_kind(kind: str) -> str:
    return {"b": "booleans", "i": "numbers", "u": "numbers", "f": "numbers", "U": "strings"}.get(
        kind, "mixed or null values"
    )
