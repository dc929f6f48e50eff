"""Zero-code scoring through ONNX Runtime: a model converted by its flavour (skl2onnx).

Clients cannot tell it from :class:`~shipml.scoring.model.ModelScorer`: the same
input schema, the same answers (``{"label": …, "probabilities": {…}}`` or
``{"prediction": …}``), the label being the most probable class. What differs is the
engine: a compiled graph evaluated in float32, which for a tree ensemble costs
microseconds per call where scikit-learn costs milliseconds (docs/performance-onnx.md).

This module needs only numpy and onnxruntime, so an image that serves ONNX carries
neither scikit-learn nor scipy: everything the scorer needs besides the graph (classes,
task, output names) is in ``onnx/conversion.json``, written by
:mod:`shipml.scoring.convert` beside ``onnx/model.onnx`` in the model folder. That file
also names the model digest it was converted from, so a graph can never be served for
another version.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shipml.errors import IntegrityError, InvalidInput, ModelDefinitionError, ShipmlError
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.outputs import answers_of, output_schema
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import sha256_digest
from shipml.store.store import LocalModel

log = logging.getLogger("shipml")
FOLDER = "onnx"
GRAPH = f"{FOLDER}/model.onnx"
CONVERSION = f"{FOLDER}/conversion.json"
ENGINE = "onnxruntime"
INSTALL_HINT = "pip install 'shipml[onnx]'"
FLOAT32_MAX = float(np.finfo(np.float32).max)


class OnnxUnavailable(ShipmlError):
    code = "onnx_unavailable"


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a model converted (and checked) for ONNX Runtime."""
    return (folder / CONVERSION).is_file()


def import_onnxruntime() -> Any:
    try:
        import onnxruntime  # on use: onnxruntime is the onnx extra
    except ImportError:
        raise OnnxUnavailable(
            f"serving through ONNX Runtime needs the onnxruntime package: {INSTALL_HINT}"
        ) from None
    return onnxruntime


def read_conversion(local: LocalModel) -> dict[str, Any]:
    """The conversion record of ``local``, checked against the version and the graph."""
    path = local.folder / CONVERSION
    try:
        record: dict[str, Any] = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise IntegrityError(f"{path} is unreadable: {exc}") from None
    ref = local.manifest.ref
    if record.get("model_digest") != local.digest:
        raise IntegrityError(
            f"{path} was converted from {record.get('model_digest')}, not from {ref} "
            f"({local.digest}); convert this version again (shipml build --onnx)"
        )
    graph = local.folder / GRAPH
    if not graph.is_file() or sha256_digest(graph.read_bytes()) != record.get("graph_digest"):
        raise IntegrityError(
            f"{graph} of {ref} is missing or does not match the digest recorded when it was "
            "converted and checked; convert the version again (shipml build --onnx)"
        )
    return record


class OnnxScorer:
    """A converted model evaluated by an ONNX Runtime session."""

    batchable = True
    engine = ENGINE

    def __init__(self, local: LocalModel) -> None:
        manifest = local.manifest
        self.contract = manifest.contract
        if manifest.input_schema is None:
            raise ModelDefinitionError(f"{manifest.ref} has no input schema")
        record = read_conversion(local)
        ort = import_onnxruntime()
        checked_with = record.get("libraries", {}).get(ENGINE)
        installed = metadata.version("onnxruntime")
        if checked_with and checked_with != installed:
            log.warning(
                "%s was checked against scikit-learn with onnxruntime==%s but "
                "onnxruntime==%s is installed; pin onnxruntime==%s to be sure it answers the same",
                manifest.ref,
                checked_with,
                installed,
                checked_with,
            )
        self.session = session(ort, local.folder / GRAPH)
        self.schema = InputSchema(manifest.input_schema)
        self._input: str = record["input"]
        self._output: str = record["output"]
        self.task: str = record["task"]
        self.classes: list[Any] = list(record.get("classes") or [])
        self._proba = bool(record.get("probabilities"))
        self._keys = [str(c) for c in self.classes]
        self.output_schema: dict[str, Any] | None = output_schema(self.classes, self._proba)

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        items, single, rows = split_payload(payload)
        return self._float32(self.schema.matrix(items, rows), single)

    def prepare_table(self, features: np.ndarray | list[np.ndarray]) -> Prepared:
        """Features checked by the caller: no record per row."""
        return self._float32(self.schema.table(features), False)

    def _float32(self, matrix: np.ndarray, single: bool) -> Prepared:
        if self.schema.nullable and np.isnan(matrix).any():
            name = self.schema.names[int(np.isnan(matrix).any(axis=0).argmax())]
            raise InvalidInput(
                f"field {name!r} cannot be null while the model is served through ONNX "
                "Runtime (--onnx): the conversion is checked on complete rows only"
            )
        if len(matrix) and np.abs(matrix).max() > FLOAT32_MAX:
            raise InvalidInput(
                "a value is too large for this model: it is served through ONNX Runtime, "
                "which computes in float32 (largest magnitude about 3.4e38)"
            )
        return Prepared(matrix.astype(np.float32), len(matrix), single)

    def concat(self, parts: list[Any]) -> Any:
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def run(self, data: np.ndarray) -> np.ndarray:
        """The raw output the answers are built from: probabilities, labels or values."""
        matrix = np.ascontiguousarray(data, dtype=np.float32)
        output: np.ndarray = self.session.run([self._output], {self._input: matrix})[0]
        if not self.classes and output.ndim == 2 and output.shape[1] == 1:
            return output[:, 0]  # one target: one number per row, as scikit-learn answers
        return output

    def predict(self, data: Any) -> list[dict[str, Any]]:
        if len(data) == 0:
            return []
        output = self.run(data)
        if self._proba:
            return answers_of(output, self.classes, self._keys)
        key = "label" if self.classes else "prediction"
        return [{key: value} for value in output.tolist()]


def session(ort: Any, graph: Path) -> Any:
    """An ONNX Runtime session for serving: the worker's native threads (serving/sizing.py:
    one when workers fill the CPUs — a second intra-op thread per session only makes them
    compete, docs/performance-onnx.md), sequential, quiet."""
    from shipml.serving.sizing import native_threads

    options = ort.SessionOptions()
    options.intra_op_num_threads = native_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the service log is for the service
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
