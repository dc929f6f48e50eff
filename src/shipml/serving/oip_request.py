"""An Open Inference Protocol ``infer`` request: its body, and the model's features in it.

The body is a JSON inference request, optionally followed by binary tensor data (Triton's
extension: the ``Inference-Header-Content-Length`` header gives the JSON's length, and each
binary input its ``binary_data_size``, in input order). Every way a body can be malformed
(a length beyond the body, sizes that do not add up, a truncated BYTES element, …) is a
:class:`~shipml.serving.tensors.TensorError` (400) that says what to fix.

The model's features come in one of two forms (docs/http-api.md):

- **one tensor ``[N, F]``**, columns in schema order, for models whose features are all
  numbers (any name; metadata calls it ``input``);
- **one tensor per feature**, named after it, shape ``[N]`` or ``[N, 1]`` (any model).

Either way each feature becomes one column, checked against the schema's type for it the way
``/predict`` checks a record's field, so both routes accept and refuse the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shipml.serving.tensors import (
    BYTES,
    Tensor,
    TensorError,
    check_datatype,
    check_shape,
    from_binary,
    from_json,
)

NUMBER_KINDS = ("number", "integer")
_INT64_MAX = np.iinfo(np.int64).max


@dataclass(slots=True)
class RequestedOutput:
    name: str
    binary: bool | None  # None: the request's binary_data_output decides
    classification: int  # Triton's classification extension: top-k classes, 0 for off


@dataclass(slots=True)
class InferRequest:
    id: Any
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None  # None: every output
    binary_outputs: bool


def parse_infer(body: bytes, header_length: bytes | None) -> InferRequest:
    """Parse an infer body; ``header_length`` is the Inference-Header-Content-Length value."""
    view = memoryview(body)
    binary: memoryview | None = None
    if header_length is not None:
        if not header_length.strip().isdigit():
            raise TensorError(
                f"Inference-Header-Content-Length must be a number of bytes, got {header_length!r}"
            )
        length = int(header_length)
        if length > len(body):
            raise TensorError(
                f"Inference-Header-Content-Length is {length} but the body has only "
                f"{len(body)} bytes"
            )
        view, binary = view[:length], view[length:]
    try:
        request = orjson.loads(view)
    except orjson.JSONDecodeError as exc:
        where = (
            "the JSON header (its length is Inference-Header-Content-Length)"
            if binary
            else "the body"
        )
        raise TensorError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise TensorError(
            'an infer request is {"inputs": [{"name", "shape", "datatype", "data"}, ...]}'
        )
    if not request["inputs"]:
        raise TensorError("the request has no inputs")
    parameters = _parameters(request.get("parameters"), "the request")
    offset = 0
    inputs: list[Tensor] = []
    for index, item in enumerate(request["inputs"]):
        tensor, offset = _input(item, index, binary, offset)
        inputs.append(tensor)
    if binary is not None and offset != len(binary):
        raise TensorError(
            f"the body has {len(binary)} bytes of tensor data after the JSON header, but the "
            f"inputs' binary_data_size add up to {offset}"
        )
    names = [tensor.name for tensor in inputs]
    if len(set(names)) != len(names):
        raise TensorError(f"input names must be unique; got {', '.join(names)}")
    return InferRequest(
        id=request.get("id"),
        inputs=inputs,
        outputs=_outputs(request.get("outputs")),
        binary_outputs=parameters.get("binary_data_output") is True,
    )


def _input(item: Any, index: int, binary: memoryview | None, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise TensorError(f"input {index} must be an object with a string 'name'")
    name = item["name"]
    datatype = check_datatype(name, item.get("datatype"))
    shape = check_shape(name, item.get("shape"))
    parameters = _parameters(item.get("parameters"), f"input {name!r}")
    if "shared_memory_region" in parameters:
        raise TensorError(f"input {name!r}: shared memory is not supported; send the data")
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise TensorError(f"input {name!r} has neither 'data' nor a binary_data_size")
        return Tensor(name, datatype, from_json(name, datatype, shape, item["data"])), offset
    if "data" in item:
        raise TensorError(f"input {name!r} has both 'data' and a binary_data_size; send one")
    if binary is None:
        raise TensorError(
            f"input {name!r} has a binary_data_size but the request has no "
            "Inference-Header-Content-Length header giving the length of its JSON part"
        )
    if type(size) is not int or size < 0:
        raise TensorError(f"input {name!r}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise TensorError(
            f"input {name!r}: binary_data_size {size} goes past the end of the body "
            f"({len(binary) - offset} bytes of tensor data remain)"
        )
    raw = binary[offset : offset + size]
    return Tensor(name, datatype, from_binary(name, datatype, shape, raw)), offset + size


def _outputs(value: Any) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TensorError("'outputs' must be a list of {\"name\": …} objects")
    wanted: list[RequestedOutput] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise TensorError(f"requested output {index} must be an object with a string 'name'")
        name = item["name"]
        parameters = _parameters(item.get("parameters"), f"output {name!r}")
        if "shared_memory_region" in parameters:
            raise TensorError(f"output {name!r}: shared memory is not supported")
        binary = parameters.get("binary_data")
        count = parameters.get("classification", 0)
        if type(count) is float and count.is_integer():
            count = int(count)  # JSON does not tell 3 from 3.0
        if type(count) is not int or count < 0:
            raise TensorError(f"output {name!r}: 'classification' must be a count of classes")
        wanted.append(RequestedOutput(name, binary if isinstance(binary, bool) else None, count))
    return wanted


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TensorError(f"the parameters of {where} must be a JSON object")
    return value


# -- the model's features --------------------------------------------------------------


Features = np.ndarray | list[np.ndarray]


def feature_columns(fields: dict[str, str], inputs: list[Tensor]) -> Features:
    """The request's features, checked: one column per schema feature (in schema order),
    or the ``[N, F]`` matrix itself when every feature is a number (no copy, no column
    taken apart)."""
    names = list(fields)
    columns: list[np.ndarray]
    if len(inputs) == 1 and inputs[0].name not in fields:
        matrix = _matrix(fields, inputs[0])
        if matrix is not None:
            return matrix
        columns = _matrix_columns(fields, inputs[0])
    else:
        given = {tensor.name: tensor for tensor in inputs}
        for name in given:
            if name not in fields:
                raise TensorError(
                    f"unknown input {name!r}; send one tensor per feature "
                    f"({', '.join(names)}){_matrix_hint(fields)}"
                )
        missing = [name for name in names if name not in given]
        if missing:
            raise TensorError(
                f"missing input {missing[0]!r}; send one tensor per feature "
                f"({', '.join(names)}){_matrix_hint(fields)}"
            )
        columns = []
        for name in names:
            tensor = given[name]
            shape = tensor.array.shape
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise TensorError(
                    f"input {name!r} must have shape [N] or [N, 1], got {list(shape)}"
                )
            where = f"input {name!r}"
            columns.append(_column(fields[name], tensor.datatype, tensor.array.reshape(-1), where))
    rows = {len(column) for column in columns}
    if len(rows) > 1:
        counts = ", ".join(f"{n}: {len(c)}" for n, c in zip(names, columns, strict=True))
        raise TensorError(f"the inputs hold different numbers of rows ({counts})")
    if rows == {0}:
        raise TensorError("the inputs hold no rows")
    return columns


def _matrix(fields: dict[str, str], tensor: Tensor) -> np.ndarray | None:
    """The fast path of the ``[N, F]`` form: all-"number" features, a well-formed matrix
    of finite numbers, checked in one pass; None sends it to the column-wise checks that
    say what is wrong (or convert integer features)."""
    array = tensor.array
    if (
        array.ndim == 2
        and array.shape[1] == len(fields)
        and len(array)
        and array.dtype.kind in "iuf"
        and all(kind == "number" for kind in fields.values())
        and (array.dtype.kind != "f" or np.isfinite(array).all())
    ):
        return array
    return None


def _matrix_columns(fields: dict[str, str], tensor: Tensor) -> list[np.ndarray]:
    names, width = list(fields), len(fields)
    if not all(kind in NUMBER_KINDS for kind in fields.values()):
        raise TensorError(
            f"input {tensor.name!r} is not a feature of this model, and one [N, {width}] tensor "
            "is only for models whose features are all numbers; send one tensor per feature, "
            f"named after it: {', '.join(f'{n} ({k})' for n, k in fields.items())}"
        )
    array = tensor.array
    if width == 1 and array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != width:
        raise TensorError(
            f"input {tensor.name!r} must have shape [N, {width}] (one column per feature: "
            f"{', '.join(names)}), got {list(tensor.array.shape)}"
        )
    return [
        _column(kind, tensor.datatype, array[:, j], f"input {tensor.name!r} column {j} ({name})")
        for j, (name, kind) in enumerate(fields.items())
    ]


def _column(kind: str, datatype: str, values: np.ndarray, where: str) -> np.ndarray:
    """``values`` as the feature's type wants them, or a TensorError saying why not."""
    dtype = values.dtype.kind
    if kind in NUMBER_KINDS:
        if dtype not in "iuf":
            raise TensorError(f"{where} must be numbers ({_send(kind)}), got {datatype}")
        if dtype == "f" and not np.isfinite(values).all():
            row = int(np.argmin(np.isfinite(values)))
            raise TensorError(f"{where} holds NaN or infinity (row {row})")
        if kind == "number":
            return values
        if datatype in ("FP16", "FP32"):  # they round integers (and underflow fractions to 0)
            raise TensorError(f"{where} must be integers: send INT64 (or FP64), not {datatype}")
        if dtype == "f":
            bad = np.flatnonzero(values != np.trunc(values))
            if len(bad):
                raise TensorError(
                    f"{where} must be integers, got {values[bad[0]]!r} (row {int(bad[0])})"
                )
            if values.size and (values.min() <= -(2.0**63) or values.max() >= 2.0**63):
                raise TensorError(f"{where}: a value is beyond INT64")
        if dtype == "u" and values.size and values.max() > _INT64_MAX:
            raise TensorError(f"{where}: a value is beyond INT64")
        return values.astype(np.int64)
    if kind == "boolean":
        if dtype != "b":
            raise TensorError(f"{where} must be BOOL, got {datatype}")
        return values
    if datatype != BYTES:
        raise TensorError(f"{where} must be strings (BYTES), got {datatype}")
    return values


def _send(kind: str) -> str:
    return "send FP64, FP32 or INT64" if kind == "number" else "send INT64"


def _matrix_hint(fields: dict[str, str]) -> str:
    if all(kind in NUMBER_KINDS for kind in fields.values()):
        return f", or one [N, {len(fields)}] tensor with the features in that order"
    return ""


def schemaless_payload(inputs: list[Tensor]) -> dict[str, Any]:
    """What a model without an input schema gets: ``{"data": the tensor as nested lists}``,
    the body most Azure ML scoring scripts read (``json.loads(raw)["data"]``)."""
    if len(inputs) != 1:
        raise TensorError(
            "this model has no input schema: send exactly one tensor; it reaches the model "
            'as {"data": [...]}, like a /predict body'
        )
    return {"data": inputs[0].array.tolist()}
