"""The Open Inference Protocol (v2: KServe, Triton, MLServer) as a thin face on :class:`Service`.

What it adds to ``/predict`` is only translation: an ``infer`` request's tensors become the
model's features (:mod:`.oip_request`), the answers ``/predict`` would give become output
tensors, and metadata, readiness and errors take the protocol's shapes (``{"error": "…"}``
with the status Triton and KServe use: 400 for any problem with the request, 404 for an
unknown model or version). docs/http-api.md has the table of what is supported.

Outputs are the fields of ``/predict``'s answers, one tensor each, rows first: a classifier
gives ``label`` ``[N]`` and ``probabilities`` ``[N, C]`` (FP64) plus ``classes`` ``[C]``
(BYTES: the column names, in order); a regressor ``prediction`` ``[N]``. Fields of other
scoring contracts (score.py, predictor classes) map the same way: numbers and booleans to
their tensor types, strings to BYTES, a field whose values are ``{key: number}`` objects to
an ``[N, K]`` FP64 tensor plus ``<field>_keys``, anything else to BYTES holding each value's
JSON text. An answer that is not a list of records is one tensor, ``output``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from shipml import __version__
from shipml.errors import ModelError, NotFound, ShipmlError
from shipml.serving.costs import LARGE_BODY_BYTES
from shipml.serving.oip_request import (
    NUMBER_KINDS,
    InferRequest,
    RequestedOutput,
    feature_columns,
    parse_infer,
    schemaless_payload,
)
from shipml.serving.service import Service
from shipml.serving.tensors import (
    BYTES,
    Tensor,
    TensorError,
    binary_data,
    datatype_of,
    json_data,
)

MATRIX_INPUT = "input"
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]
SCHEMA_DATATYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}
KEYS_OUTPUT = {"probabilities": "classes"}  # the name of the tensor naming a matrix's columns


class OpenInference:
    """The protocol's calls on one :class:`Service`; the endpoints only pass HTTP in and out."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "shipml", "version": __version__, "extensions": EXTENSIONS}

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        info = self._check(name, version)
        return {
            "name": info["name"],
            "versions": [str(info["version"])],
            "platform": f"shipml-{info['contract']}",
            "inputs": input_metadata(self.service.input_fields()),
            "outputs": output_metadata(info.get("output_schema")),
        }

    def model_ready(self, name: str, version: str | None) -> dict[str, Any]:
        info = self._check(name, version)  # raises NotReady (503) while loading
        return {"name": info["name"], "ready": True}

    def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        """A minimal Triton model configuration: the model batches itself
        (``max_batch_size`` 0, so ``dims`` are the whole shapes, batch included)."""
        meta = self.model_metadata(name, version)
        return {
            "name": meta["name"],
            "platform": meta["platform"],
            "backend": "shipml",
            "max_batch_size": 0,
            "input": [_config_tensor(tensor) for tensor in meta["inputs"]],
            "output": [_config_tensor(tensor) for tensor in meta["outputs"]],
        }

    async def infer(
        self,
        name: str,
        version: str | None,
        body: bytes,
        header_length: bytes | None,
        request_id: str,
    ) -> tuple[bytes, int | None]:
        """The response body, and the length of its JSON part when binary data follows.

        A large body is parsed and its answer written on a thread (serving/costs.py)."""
        info = self._check(name, version)
        large = len(body) > LARGE_BODY_BYTES
        fields = self.service.input_fields()
        if large:
            request, inputs = await self.service.off_loop(_parse, body, header_length, fields)
        else:
            request, inputs = _parse(body, header_length, fields)
        if fields:
            results = await self.service.predict_features(inputs, request_id, large)
        else:
            results = await self.service.predict_payload(
                inputs, orjson.dumps(inputs, option=orjson.OPT_SERIALIZE_NUMPY), request_id
            )
        head: dict[str, Any] = {
            "model_name": info["name"],
            "model_version": str(info["version"]),
            # KServe's data model requires an id: the request's, else this request's X-Request-ID.
            "id": str(request.id) if request.id is not None else request_id,
        }
        if large:
            answer: tuple[bytes, int | None] = await self.service.off_loop(
                _answer, head, results, request
            )
            return answer
        return _answer(head, results, request)

    def _check(self, name: str, version: str | None) -> dict[str, Any]:
        info = self.service.info()
        if name != info["name"]:
            raise NotFound(f"this service serves model {info['name']!r}, not {name!r}")
        if version is not None and version != str(info["version"]):
            raise NotFound(
                f"model {name!r} has no version {version!r} here; this service serves "
                f"version {info['version']}"
            )
        return info


def _parse(
    body: bytes, header_length: bytes | None, fields: dict[str, str]
) -> tuple[InferRequest, Any]:
    """The request, and its inputs as the model's features (or the payload, schemaless)."""
    request = parse_infer(body, header_length)
    if fields:
        return request, feature_columns(fields, request.inputs)
    return request, schemaless_payload(request.inputs)


def _answer(head: dict[str, Any], results: Any, request: InferRequest) -> tuple[bytes, int | None]:
    return encode(head, select(result_tensors(results), request.outputs, request.binary_outputs))


def error_body(exc: ShipmlError) -> tuple[int, bytes]:
    """The protocol's error object; a request that does not fit the model is 400 here, as
    in Triton and KServe (``/predict`` says 422)."""
    status = 400 if exc.status == 422 else exc.status
    return status, orjson.dumps({"error": exc.message})


# -- answers → output tensors ----------------------------------------------------------


def result_tensors(results: Any) -> list[Tensor]:
    """The output tensors of the answers ``/predict`` gives (see the module's docstring)."""
    if isinstance(results, list) and results and isinstance(results[0], dict):
        keys = results[0].keys()
        if all(isinstance(r, dict) and r.keys() == keys for r in results):
            return [t for key in keys for t in _tensors(key, [r[key] for r in results])]
    if isinstance(results, dict):
        return [
            t
            for key, value in results.items()
            for t in _tensors(str(key), value if isinstance(value, list) else [value])
        ]
    return _tensors("output", results if isinstance(results, list) else [results])


def _tensors(name: str, values: list[Any]) -> list[Tensor]:
    first = values[0] if values else None
    if isinstance(first, dict) and first:
        keys = list(first)
        if all(isinstance(v, dict) and list(v) == keys for v in values):
            matrix = np.asarray([list(v.values()) for v in values])
            if matrix.dtype.kind in "iuf":
                labels = np.empty(len(keys), dtype=object)
                labels[:] = [str(k) for k in keys]
                return [
                    Tensor(name, "FP64", matrix.astype(np.float64), labels=labels),
                    Tensor(KEYS_OUTPUT.get(name, f"{name}_keys"), BYTES, labels),
                ]
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):  # ragged
        return [Tensor(name, BYTES, _json_texts(values))]
    datatype = datatype_of(array)
    if datatype is None:  # numbers of a type the protocol lacks (e.g. float128)
        array = array.astype(np.float64 if array.dtype.kind == "f" else np.int64)
        datatype = "FP64" if array.dtype.kind == "f" else "INT64"
    if datatype == BYTES:
        if array.dtype.kind != "U":
            return [Tensor(name, BYTES, _json_texts(values))]
        array = array.astype(object)
    return [Tensor(name, datatype, array)]


def _json_texts(values: list[Any]) -> np.ndarray:
    try:
        texts = [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in values]
    except TypeError as exc:  # what /predict says of the same answer
        raise ModelError(f"the model's answer cannot be written as JSON: {exc}") from None
    array = np.empty(len(values), dtype=object)
    array[:] = texts
    return array


def select(
    tensors: list[Tensor], requested: list[RequestedOutput] | None, binary: bool
) -> list[tuple[Tensor, bool]]:
    """The outputs to send and whether each goes as binary data: all of them by default,
    else the requested ones in the requested order."""
    if requested is None:
        return [(tensor, binary) for tensor in tensors]
    by_name = {tensor.name: tensor for tensor in tensors}
    chosen: list[tuple[Tensor, bool]] = []
    for want in requested:
        tensor = by_name.get(want.name)
        if tensor is None:
            raise TensorError(
                f"unknown output {want.name!r}; this model's outputs are {', '.join(by_name)}"
            )
        if want.classification:
            tensor = classify(tensor, want.classification)
        chosen.append((tensor, binary if want.binary is None else want.binary))
    return chosen


def classify(tensor: Tensor, count: int) -> Tensor:
    """Triton's classification extension: the top ``count`` columns of each row as
    ``"score:index:label"`` strings (``"score:index"`` when the columns have no names)."""
    scores = tensor.array
    if scores.ndim != 2 or scores.dtype.kind not in "iuf":
        raise TensorError(
            f"output {tensor.name!r} has no class scores to classify; ask for classification "
            "on an [N, C] output such as probabilities"
        )
    count = min(count, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    labels = tensor.labels
    texts = np.empty(order.shape, dtype=object)
    for row, columns in enumerate(order.tolist()):
        for place, column in enumerate(columns):
            text = f"{scores[row, column]:f}:{column}"
            texts[row, place] = f"{text}:{labels[column]}" if labels is not None else text
    return Tensor(tensor.name, BYTES, texts)


def encode(head: dict[str, Any], chosen: list[tuple[Tensor, bool]]) -> tuple[bytes, int | None]:
    """The response body; binary outputs' bytes follow the JSON in output order."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor, binary in chosen:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.array.shape),
        }
        if binary:
            chunk = binary_data(tensor.array)
            chunks.append(chunk)
            entry["parameters"] = {"binary_data_size": len(chunk)}
        else:
            entry["data"] = json_data(tensor.array)
        outputs.append(entry)
    head["outputs"] = outputs
    text = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)


# -- metadata --------------------------------------------------------------------------


def input_metadata(fields: dict[str, str]) -> list[dict[str, Any]]:
    """One ``[-1, F]`` FP64 tensor when every feature is a number, else one per feature."""
    if not fields:
        return []
    if all(kind in NUMBER_KINDS for kind in fields.values()):
        return [{"name": MATRIX_INPUT, "datatype": "FP64", "shape": [-1, len(fields)]}]
    return [
        {"name": name, "datatype": SCHEMA_DATATYPES.get(kind, BYTES), "shape": [-1]}
        for name, kind in fields.items()
    ]


def output_metadata(schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The output tensors an answer of ``schema`` (the model's output schema) becomes."""
    outputs: list[dict[str, Any]] = []
    for name, spec in ((schema or {}).get("properties") or {}).items():
        if spec.get("type") == "object" and spec.get("properties"):
            width = len(spec["properties"])
            outputs.append({"name": name, "datatype": "FP64", "shape": [-1, width]})
            keys = KEYS_OUTPUT.get(name, f"{name}_keys")
            outputs.append({"name": keys, "datatype": BYTES, "shape": [width]})
        elif spec.get("type") == "array" and "maxItems" in spec:  # one value per output
            items = SCHEMA_DATATYPES.get(_kind(spec.get("items", {})), BYTES)
            outputs.append({"name": name, "datatype": items, "shape": [-1, spec["maxItems"]]})
        elif "enum" in spec:
            values = [value for value in spec["enum"] if value is not None]  # null: no class
            datatype = datatype_of(np.asarray(values)) if values else BYTES
            outputs.append({"name": name, "datatype": datatype or "FP64", "shape": [-1]})
        else:
            datatype = SCHEMA_DATATYPES.get(_kind(spec), BYTES)
            outputs.append({"name": name, "datatype": datatype, "shape": [-1]})
    return outputs


def _kind(spec: dict[str, Any]) -> str:
    """A JSON Schema's type other than null (``["number", "null"]`` is a number)."""
    kinds = spec.get("type", "")
    return next((k for k in kinds if k != "null"), "") if isinstance(kinds, list) else kinds


def _config_tensor(tensor: dict[str, Any]) -> dict[str, Any]:
    datatype = tensor["datatype"]
    return {
        "name": tensor["name"],
        "data_type": "TYPE_STRING" if datatype == BYTES else f"TYPE_{datatype}",
        "dims": tensor["shape"],
    }
