"""ONNX: a graph the user brings (``save_model("model.onnx")``, a path, or an
``onnx.ModelProto``), served through ONNX Runtime.

The file is stored as it is (``model.onnx``). The input schema comes from the training
data and feature names as for any model, else from the graph: one input of shape
``[N, F]`` is ``F`` fields (``f0``…, or ``feature_names``), several inputs of shape
``[N]`` or ``[N, 1]`` are one field each, named after the input and typed after its
tensor type. The answers are read off the outputs:

- a classifier graph (a label output and a probability output, a tensor ``[N, C]`` or
  a list of maps as skl2onnx's ``ZipMap`` makes) answers the label and every class's
  probability; the classes are the graph's own labels (the classifier node's
  ``classlabels_*``, read with the ``onnx`` package when it is installed where the model
  is saved, or the keys of the maps), else ``0…C-1``; the label is the most probable;
- otherwise the first output is the prediction.

Images get onnxruntime, which is all the graph needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import TrainingError
from shipml.flavours.base import Flavour, Loaded, Saved, model_path
from shipml.store.manifest import Manifest

FILE = "model.onnx"
_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
_JSON = {
    "tensor(float)": "number",
    "tensor(double)": "number",
    "tensor(int64)": "integer",
    "tensor(int32)": "integer",
    "tensor(bool)": "boolean",
    "tensor(string)": "string",
}


def graph_bytes(model: Any) -> bytes:
    """The serialized graph of a path, bytes or ``onnx.ModelProto``."""
    if isinstance(model, bytes):
        return model
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise TrainingError(f"{path} is not a file; save_model takes the .onnx file's path")
        return path.read_bytes()
    return bytes(model.SerializeToString())


def _session(model: Any) -> Any:
    from shipml.scoring.onnx import import_onnxruntime  # on use: onnxruntime is the onnx extra

    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(graph_bytes(model), options, providers=["CPUExecutionProvider"])


def graph_classes(model: Any) -> list[Any] | None:
    """The class labels a classifier node of the graph declares (needs the onnx package)."""
    try:
        import onnx  # on use: the library is installed only where its models are
    except ImportError:
        return None
    graph = onnx.load_from_string(graph_bytes(model))
    for node in graph.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [s.decode() for s in attribute.strings]
            if attribute.name == "classlabels_int64s" and attribute.ints:
                return list(attribute.ints)
    return None


class OnnxModel:
    frame = False

    def __init__(self, model: Any, classes: list[Any] | None) -> None:
        self.model = graph_bytes(model)
        self.session = _session(self.model)
        self._inputs = [
            (i.name, _NUMPY.get(i.type, np.float32), i.shape) for i in self.session.get_inputs()
        ]
        first = self._inputs[0][2]
        # A graph exported with a fixed batch size (``[1, 4]``, common in exports made for
        # one request at a time) takes exactly that many rows per run; None: any number.
        self._rows: int | None = (
            first[0] if first and isinstance(first[0], int) and first[0] > 0 else None
        )
        outputs = self.session.get_outputs()
        probability = next((i for i, o in enumerate(outputs) if i > 0 and _is_probability(o)), None)
        self._output = outputs[probability].name if probability is not None else outputs[0].name
        self.probabilities = probability is not None
        self._maps = self.probabilities and "map" in str(outputs[probability or 0].type)
        self.classes: list[Any] = list(classes or [])
        if self._maps and not self.classes:  # the maps' keys are the classes
            zeros = np.zeros(
                (
                    self._rows or 1,
                    len(self._inputs)
                    if len(self._inputs) > 1
                    else _width(self.session.get_inputs()[0]),
                )
            )
            self.classes = list(self.session.run([self._output], self.feeds(zeros))[0][0])
        if self.probabilities and not self.classes:
            self.classes = list(range(_width(outputs[probability or 0])))
        self.task = "classification" if self.probabilities else "regression"

    def predict(self, data: Any) -> np.ndarray:
        rows = self._rows
        if rows is None or len(data) in (0, rows):
            return self._run(data)
        # in runs of the graph's fixed batch size, the last one padded with its last row
        matrix, parts = np.asarray(data), []
        for start in range(0, len(matrix), rows):
            chunk = matrix[start : start + rows]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], rows - len(chunk), axis=0)])
            parts.append(self._run(padded)[: len(chunk)])
        return np.concatenate(parts)

    def _run(self, data: Any) -> np.ndarray:
        output = self.session.run([self._output], self.feeds(data))[0]
        if self._maps:  # ZipMap: one {class: p} per row, in the classes' order
            return np.array([[row[c] for c in self.classes] for row in output], dtype=np.float64)
        output = np.asarray(output)
        if not self.probabilities and output.ndim == 2 and output.shape[1] == 1:
            return output[:, 0]
        return output

    def feeds(self, data: Any) -> dict[str, Any]:
        matrix = np.asarray(data)
        if len(self._inputs) == 1:
            name, dtype, shape = self._inputs[0]
            if len(shape) == 1 and matrix.ndim == 2:  # one value per row: a [N] tensor
                matrix = matrix[:, 0]
            return {name: np.ascontiguousarray(matrix, dtype=dtype)}
        feeds = {}
        for i, (name, dtype, shape) in enumerate(self._inputs):
            column: np.ndarray = np.ascontiguousarray(matrix[:, i], dtype=dtype)
            feeds[name] = column.reshape(-1, 1) if len(shape) == 2 else column
        return feeds

    def warm(self, data: Any, finite: bool) -> None:
        return None


def _is_probability(output: Any) -> bool:
    kind = str(output.type)
    return "map" in kind or (kind in ("tensor(float)", "tensor(double)") and len(output.shape) == 2)


def _width(output: Any) -> int:
    shape = output.shape
    return int(shape[1]) if len(shape) == 2 and isinstance(shape[1], int) else 2


class OnnxFlavour(Flavour):
    name = "onnx"
    library = "onnxruntime"
    modules = ("onnx",)
    runtime = ("onnxruntime",)
    file_suffixes = (".onnx",)

    def detect(self, model: Any) -> bool:
        if isinstance(model, str | os.PathLike):
            return Path(model).suffix == ".onnx"
        return type(model).__name__ == "ModelProto" and super().detect(model)

    def unservable(self, model: Any) -> str | None:
        inputs = _session(model).get_inputs()
        for tensor in inputs:
            shape = list(tensor.shape)
            # one field per input: [N], or [N, 1] (a width of its own is a second table)
            wide = len(inputs) > 1 and len(shape) == 2 and isinstance(shape[1], int)
            if len(shape) > 2 or (wide and shape[1] != 1):
                return (
                    f"its input {tensor.name!r} has the shape {shape}: shipml serves graphs "
                    "that take a table (one [N, F] tensor, or one [N] tensor per field), "
                    "as requests of fields. An image or a sequence model needs code of your "
                    "own that builds its tensor from a request: a score.py or a predictor "
                    "class (docs/scoring.md)"
                )
        return None

    def feature_types(self, model: Any) -> dict[str, str] | None:
        inputs = _session(model).get_inputs()
        if len(inputs) == 1:
            shape = inputs[0].shape
            width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else 1
            return {f"f{i}": _JSON.get(inputs[0].type, "number") for i in range(width)}
        return {i.name: _JSON.get(i.type, "number") for i in inputs}

    def feature_names(self, model: Any) -> list[str] | None:
        types = self.feature_types(model)
        return list(types) if types else None

    def takes_frame(self, model: Any, training_data: Any) -> bool:
        return False

    def libraries(self, model: Any) -> list[str]:
        return [self.library]

    def read_file(self, path: Path) -> Any:
        return path.read_bytes()

    def save(self, model: Any, folder: Path) -> Saved:
        data = graph_bytes(model)
        (folder / FILE).write_bytes(data)
        return Saved([FILE], "onnx", {"classes": graph_classes(data)})

    def load_model(self, folder: Path, manifest: Manifest) -> Any:
        return (model_path(folder, manifest)).read_bytes()

    def load(self, folder: Path, manifest: Manifest) -> Loaded:
        graph = self.load_model(folder, manifest)
        return OnnxModel(graph, manifest.flavour.get("classes") or graph_classes(graph))

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return OnnxModel(model, graph_classes(graph_bytes(model)))

    def refusal(self, exc: BaseException) -> str | None:
        # ONNX Runtime's InvalidArgument: a value the graph does not take.
        if type(exc).__name__ == "InvalidArgument":
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return super().refusal(exc)


FLAVOUR = OnnxFlavour()
