"""The JSON Schemas of the OpenAPI document: exactly what the service accepts and answers.

Exact both ways, because clients and fuzzers take the document at its word: a request the
schema calls valid is answered 2xx (not 422), one it calls invalid is refused (4xx).
So each field says what :class:`~shipml.scoring.columns.Column` accepts (integers within
the training dtype's range, ``null`` only where the model takes a missing value, no
other fields), a text field the model refuses unseen values of lists the values it was
trained on (:mod:`shipml.serving.contract`), and the Open Inference Protocol's infer
request documents one row, which JSON Schema can state exactly (a tensor's shape and the
length of its data cannot be tied together in JSON Schema; docs/http-api.md has the rest).
"""

from __future__ import annotations

import json
from typing import Any

from shipml.scoring.columns import Column
from shipml.serving.tensors import BYTES

REQUEST_ID = {
    "description": "The request's id: the X-Request-ID it sent (letters, digits, . _ : -), "
    "else one the service made",
    "required": True,
    "schema": {"type": "string"},
}
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "examples": ["invalid_input"]},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "state": {"enum": ["loading", "retrying"]},
                "attempt": {"type": "integer", "minimum": 1},
                "reason": {"type": "string"},
                "traceback": {"type": "string"},
            },
            "required": ["code", "message", "request_id"],
        }
    },
    "required": ["error"],
}
OIP_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
AZUREML_ERROR = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}
# What each tensor datatype's JSON data may hold (tensors.py refuses the rest).
INTEGER_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
# A float cast to FP16 or FP32 overflows to infinity (refused) from half an ulp above
# the largest finite value on.
FLOAT_LIMITS = {"FP16": 65520.0, "FP32": 3.4028235677973366e38}
# The largest integer FP64 carries into an INT64 feature: below 2**63 once rounded
# (2**63 - 512 rounds up to 2**63). FP16 and FP32 are refused for integer features.
INTEGRAL_FLOATS = {"FP64": 2**63 - 513}


def field(prop: dict[str, Any], name: str, closed: bool) -> dict[str, Any]:
    """One field of a record, as the service accepts it."""
    column = Column(name, prop)
    schema: dict[str, Any]
    if column.kind == "integer":
        low, high = column.bounds or (-(2**63), 2**63 - 1)
        schema = {"type": "integer", "minimum": low, "maximum": high}
    elif column.kind == "number":
        # any JSON number a double holds; no bounds: a literal just past the largest double
        # rounds to it, so no bound could be exact
        schema = {"type": "number"}
    elif column.kind == "boolean":
        schema = {"type": "boolean"}
    elif column.datetime:
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
    known = prop.get("enum") or prop.get("x-values")
    if closed and known:
        schema = {"enum": [value for value in known if value is not None]}
    if column.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    for key in ("description", "x-dtype"):
        if key in prop:
            schema[key] = prop[key]
    return schema


def record(input_schema: dict[str, Any], closed: frozenset[str]) -> dict[str, Any]:
    properties = input_schema["properties"]
    names = list(input_schema.get("required") or properties)
    return {
        "type": "object",
        "properties": {n: field(properties[n], n, n in closed) for n in names},
        "required": names,
        "additionalProperties": False,
    }


def row(record_schema: dict[str, Any]) -> dict[str, Any]:
    """A record's values as a list, in the schema's order."""
    values = [record_schema["properties"][n] for n in record_schema["required"]]
    return {
        "type": "array",
        "prefixItems": values,
        "items": False,
        "minItems": len(values),
        "description": "One record's values in feature order: "
        + ", ".join(record_schema["required"]),
    }


def predict_body() -> dict[str, Any]:
    """One record, a list of records or of rows, or ``{"inputs": ...}`` with the same."""
    record_ref = {"$ref": "#/components/schemas/Record"}
    row_ref = {"$ref": "#/components/schemas/Row"}
    many = [
        {"type": "array", "items": record_ref},
        {"type": "array", "items": row_ref, "minItems": 1},
    ]
    return {
        "anyOf": [
            record_ref,
            *many,
            {
                "type": "object",
                "properties": {"inputs": {"anyOf": [record_ref, *many]}},
                "required": ["inputs"],
                "additionalProperties": False,
            },
        ]
    }


def result(output_schema: dict[str, Any] | None, example_output: Any) -> dict[str, Any]:
    """One answer: the model's output schema, or, when its own code answers and declares
    none, any JSON value (with the warm-up's answer as an example)."""
    if output_schema:
        return output_schema
    unknown: dict[str, Any] = {
        "description": "What the model's own code returns for a record: it declares no "
        "output schema, so any JSON value"
    }
    if example_output is not None:
        unknown["examples"] = [example_output]
    return unknown


# -- the Open Inference Protocol ---------------------------------------------------------


Element = tuple[str, dict[str, Any]]  # a feature's kind, and its record field's schema


def _data(element: Element, datatype: str) -> dict[str, Any]:
    """What one element of ``datatype`` data may be, for a feature (kind, field schema)."""
    kind, value = element
    if kind == "integer":  # any numeric datatype, integral values within the column's range
        low, high = value.get("minimum", -(2**63)), value.get("maximum", 2**63 - 1)
        wide = INTEGER_RANGES.get(datatype) or (
            -INTEGRAL_FLOATS[datatype],
            INTEGRAL_FLOATS[datatype],
        )
        return {"type": "integer", "minimum": max(low, wide[0]), "maximum": min(high, wide[1])}
    if kind == "number":
        if datatype in INTEGER_RANGES:
            low, high = INTEGER_RANGES[datatype]
            return {"type": "integer", "minimum": low, "maximum": high}
        if datatype in FLOAT_LIMITS:
            limit = FLOAT_LIMITS[datatype]
            return {"type": "number", "exclusiveMinimum": -limit, "exclusiveMaximum": limit}
        return {"type": "number"}
    return value


def _datatypes(kinds: set[str]) -> list[str]:
    if kinds == {"number"}:
        return ["FP64", "FP32", "FP16", *INTEGER_RANGES]
    if kinds <= {"number", "integer"}:  # FP16 and FP32 would round integers
        return ["FP64", *INTEGER_RANGES]
    return ["BOOL"] if kinds == {"boolean"} else [BYTES]


def _tensor(name: dict[str, Any], shape: list[int], elements: list[Element]) -> dict[str, Any]:
    """A tensor of one row, ``shape`` ``[1]`` or ``[1, F]``: its data holds one element per
    feature, in order, in each datatype the features take (``items`` when every feature's
    element is alike: a wide table of pixels is described once, not once per column)."""
    variants = []
    for datatype in _datatypes({kind for kind, _ in elements}):
        items = [_data(element, datatype) for element in elements]
        data: dict[str, Any] = {"type": "array", "minItems": len(items)}
        if all(item == items[0] for item in items):
            data |= {"items": items[0], "maxItems": len(items)}
        else:
            data |= {"prefixItems": items, "items": False}
        variants.append(
            {
                "type": "object",
                "properties": {
                    "name": name,
                    "shape": {"const": shape},
                    "datatype": {"const": datatype},
                    "data": data,
                    "parameters": {"$ref": f"{COMPONENTS}{PARAMETERS}"},
                },
                "required": ["name", "shape", "datatype", "data"],
            }
        )
    return {"oneOf": variants}


COMPONENTS = "#/components/schemas/"
PARAMETERS = "OipTensorParameters"


TENSOR_PARAMETERS = {
    "type": ["object", "null"],
    "description": "Triton's binary tensor data extension is described in docs/http-api.md",
    "propertyNames": {"not": {"enum": ["binary_data_size", "shared_memory_region"]}},
}


def infer_request(
    record_schema: dict[str, Any] | None,
    outputs: list[dict[str, Any]],
    components: dict[str, Any],
) -> dict[str, Any]:
    """An infer request of one row: one ``[1, F]`` tensor (all-number models, any name
    that is not a feature's), or one ``[1]`` tensor per feature, named after it.

    What features share is put in ``components`` once: the tensor parameters, and the
    tensor of each distinct kind of feature, which a feature's own tensor refers to with
    its name beside. Written out per feature and per datatype, 784 pixel columns made an
    8.7 MB document that validators and Swagger UI took seconds over."""
    components[PARAMETERS] = TENSOR_PARAMETERS
    shared: dict[str, str] = {}

    def feature(name: str, element: Element) -> dict[str, Any]:
        key = json.dumps(element, sort_keys=True, default=repr)
        if key not in shared:
            shared[key] = f"OipFeatureTensor{len(shared) + 1}"
            components[shared[key]] = _tensor({"type": "string"}, [1], [element])
        own = {"properties": {"name": {"const": name}}}
        return {"allOf": [own, {"$ref": f"{COMPONENTS}{shared[key]}"}]}

    forms: list[dict[str, Any]] = []
    if record_schema is not None:
        names = list(record_schema["required"])
        elements = [_element(record_schema["properties"][n]) for n in names]
        if all(kind in ("number", "integer") for kind, _ in elements):
            free = {"properties": {"name": {"not": {"enum": names}}}}  # once, not per datatype
            matrix = {"allOf": [free, _tensor({"type": "string"}, [1, len(names)], elements)]}
            forms.append({"type": "array", "prefixItems": [matrix], "items": False, "minItems": 1})
        per_feature = [feature(n, element) for n, element in zip(names, elements, strict=True)]
        forms.append(
            {"type": "array", "prefixItems": per_feature, "items": False, "minItems": len(names)}
        )
    else:
        number: Element = ("number", {})
        forms.append(
            {
                "type": "array",
                "prefixItems": [_tensor({"type": "string"}, [1], [number])],
                "items": False,
                "minItems": 1,
            }
        )
    return {
        "type": "object",
        "properties": {
            "id": {"description": "Echoed in the answer (as text)"},
            "inputs": {"anyOf": forms} if len(forms) > 1 else forms[0],
            "outputs": {"anyOf": [{"type": "null"}, _requested(outputs)]},
            "parameters": {"type": ["object", "null"]},
        },
        "required": ["inputs"],
    }


def _element(schema: dict[str, Any]) -> Element:
    """A record field's kind, and its schema without ``null`` (tensors hold no missing
    values)."""
    found = schema.get("anyOf", [schema])[0]
    value = {k: v for k, v in found.items() if k not in ("description", "x-dtype")}
    if "enum" in found:
        strings = all(isinstance(v, str) for v in found["enum"])
        return ("string" if strings else "number"), value
    return str(found.get("type", "string")), value


def _requested(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Requested outputs: known names; classification only on a matrix of class scores."""
    kinds = []
    for output in outputs:
        scores = len(output["shape"]) == 2 and output["datatype"] != BYTES
        count = {"type": "integer", "minimum": 0} if scores else {"const": 0}
        kinds.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": output["name"]},
                    "parameters": {
                        "type": ["object", "null"],
                        "properties": {"classification": count},
                        "propertyNames": {"not": {"const": "shared_memory_region"}},
                    },
                },
                "required": ["name"],
            }
        )
    return {"type": "array", "items": {"anyOf": kinds} if kinds else False}


TENSOR_OUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "data": {"type": "array"},
        "parameters": {"type": "object"},
    },
    "required": ["name", "datatype", "shape"],
}
TENSOR_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["name", "datatype", "shape"],
}
