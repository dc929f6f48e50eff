"""The Open Inference Protocol (v2, KServe/Triton/MLServer) as a thin face on :class:`Service`.

An ``infer`` request carries tensors: either one tensor of shape ``[N, F]`` whose columns
are the features in schema order, or one tensor per feature named after it (shape
``[N]`` or ``[N, 1]``). They become records and go through the same path as
``/predict``; the list of result records becomes one output tensor per result field.
"""

from __future__ import annotations

from typing import Any

from shipml.errors import InvalidInput, NotFound
from shipml.serving.service import Service

DATATYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}


def metadata(service: Service, name: str) -> dict[str, Any]:
    info = _check_name(service, name)
    fields = service.input_fields()
    return {
        "name": info["name"],
        "versions": [str(info["version"])],
        "platform": f"shipml-{info['contract']}",
        "inputs": [
            {"name": field, "datatype": DATATYPES.get(kind, "BYTES"), "shape": [-1]}
            for field, kind in fields.items()
        ],
        "outputs": [
            {
                "name": key,
                "datatype": "FP64" if key in ("probabilities", "prediction", "score") else "BYTES",
                "shape": [-1],
            }
            for key in ((info.get("output_schema") or {}).get("properties") or {})
        ],
    }


def records_from_request(service: Service, name: str, request: Any) -> tuple[list[Any], Any]:
    """The records an ``infer`` request describes, and its ``id``."""
    _check_name(service, name)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InvalidInput(
            'an infer request is {"inputs": [{"name", "shape", "datatype", "data"}]}'
        )
    tensors = request["inputs"]
    names = list(service.input_fields())
    for tensor in tensors:
        if not isinstance(tensor, dict) or "data" not in tensor or "shape" not in tensor:
            raise InvalidInput("every input tensor needs 'name', 'shape', 'datatype' and 'data'")
    if len(tensors) == 1 and tensors[0].get("name") not in names:
        rows = _rows(tensors[0], len(names))
        return [dict(zip(names, row, strict=True)) for row in rows], request.get("id")
    by_name = {t.get("name"): _flat(t["data"]) for t in tensors}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InvalidInput(
            f"missing input tensor {missing[0]!r}; send one tensor per feature "
            f"({', '.join(names)}) or one [N, {len(names)}] tensor"
        )
    count = len(by_name[names[0]])
    if any(len(by_name[n]) != count for n in names):
        raise InvalidInput("all input tensors must hold the same number of rows")
    return [{n: by_name[n][i] for n in names} for i in range(count)], request.get("id")


def response(service: Service, results: list[Any], request_id: Any) -> dict[str, Any]:
    info = service.info()
    outputs: list[dict[str, Any]] = []
    if results and isinstance(results[0], dict):
        for key in results[0]:
            column = [result[key] for result in results]
            if isinstance(column[0], dict):  # class probabilities: an [N, C] matrix
                classes = list(column[0])
                data = [row[c] for row in column for c in classes]
                outputs.append(
                    {
                        "name": key,
                        "datatype": "FP64",
                        "shape": [len(column), len(classes)],
                        "data": data,
                        "parameters": {"classes": classes},
                    }
                )
            else:
                outputs.append(
                    {
                        "name": key,
                        "datatype": _datatype(column[0]),
                        "shape": [len(column)],
                        "data": column,
                    }
                )
    else:
        outputs.append(
            {
                "name": "output",
                "datatype": _datatype(results[0] if results else 0.0),
                "shape": [len(results)],
                "data": results,
            }
        )
    answer: dict[str, Any] = {
        "model_name": info["name"],
        "model_version": str(info["version"]),
        "outputs": outputs,
    }
    if request_id is not None:
        answer["id"] = request_id
    return answer


def _check_name(service: Service, name: str) -> dict[str, Any]:
    info = service.info()
    if name != info["name"]:
        raise NotFound(f"this service serves model {info['name']!r}, not {name!r}")
    return info


def _rows(tensor: dict[str, Any], width: int) -> list[list[Any]]:
    shape, data = tensor["shape"], _flat(tensor["data"])
    if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == width):
        raise InvalidInput(f"input tensor shape must be [N, {width}] (one column per feature)")
    if len(data) != shape[0] * width:
        raise InvalidInput(
            f"input tensor data has {len(data)} values; shape {shape} needs {shape[0] * width}"
        )
    return [data[i * width : (i + 1) * width] for i in range(shape[0])]


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput("tensor 'data' must be a list")
    if data and isinstance(data[0], list):
        return [value for row in data for value in _flat(row)]
    return data


def _datatype(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FP64"
    return "BYTES"
