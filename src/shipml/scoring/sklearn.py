"""Zero-code scoring for scikit-learn models: the schema comes from the training data.

Classifiers answer ``{"label": …, "probabilities": {class: p, …}}`` (the label is the
most probable class, so it always agrees with the probabilities shown); regressors
answer ``{"prediction": …}``. Requests are converted straight from parsed JSON to a
numpy matrix; pandas is used only for models fitted on a DataFrame, which refuse
anything else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import numpy as np

from shipml.errors import InvalidInput
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.forest import Proba, agrees, forest_proba
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import Manifest

log = logging.getLogger("shipml")
_THREAD = threading.local()


def _trust_finite_input() -> None:
    """Skip scikit-learn's finiteness scan of every input, in the calling thread.

    The scan costs 10-30 µs per call on a one-row request (a tenth of an iris SVC's
    whole call) and can never fire here: requests are parsed by orjson, which refuses
    NaN, Infinity and numbers beyond a double's range, binary tensors (``/v2``) are
    refused when they hold either (:mod:`shipml.serving.oip_request`), and the schema
    admits numbers only where the training data had them. scikit-learn's settings are per thread, so
    each thread that calls a model sets it once.
    """
    if not getattr(_THREAD, "trusted", False):
        import sklearn

        sklearn.set_config(assume_finite=True)
        _THREAD.trusted = True


class SklearnScorer:
    contract = "sklearn"
    batchable = True

    def __init__(self, model: Any, manifest: Manifest) -> None:
        if manifest.input_schema is None:
            raise InvalidInput(
                f"{manifest.ref} has no input schema; save it with training_data or "
                "feature_names so shipml knows the features"
            )
        self.model = model
        self.schema = InputSchema(manifest.input_schema)
        self._proba = hasattr(model, "predict_proba") and hasattr(model, "classes_")
        classes = getattr(model, "classes_", None)
        self.classes: list[Any] = np.asarray(classes).tolist() if classes is not None else []
        self._keys = [str(c) for c in self.classes]
        self._frame_columns = (
            list(self.schema.names) if hasattr(model, "feature_names_in_") else None
        )
        self.task = "classification" if self.classes else "regression"
        self.output_schema: dict[str, Any] | None = self._output_schema()
        self._fast_proba = self._checked_forest_path(manifest)

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        items, single, rows = split_payload(payload)
        return Prepared(self.schema.matrix(items, rows), len(items), single)

    def prepare_table(self, features: np.ndarray | list[np.ndarray]) -> Prepared:
        """Features checked by the caller (finite numbers included): no record per row."""
        table = self.schema.table(features)
        return Prepared(table, len(table), False)

    def concat(self, parts: list[Any]) -> Any:
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def predict(self, data: Any) -> list[dict[str, Any]]:
        if len(data) == 0:
            return []
        _trust_finite_input()
        if self._fast_proba is not None:
            return self._classes_of(self._fast_proba(data))
        if self._frame_columns is not None:
            data = self._frame(data)
        if self._proba:
            return self._classes_of(self.model.predict_proba(data))
        predictions = np.asarray(self.model.predict(data)).tolist()
        key = "label" if self.classes else "prediction"
        return [{key: value} for value in predictions]

    def _frame(self, data: Any) -> Any:
        import pandas as pd  # type: ignore[import-untyped]  # only DataFrame-fitted models

        return pd.DataFrame(data, columns=self._frame_columns)

    def _classes_of(self, proba: Any) -> list[dict[str, Any]]:
        """One answer per row: the most probable class and every class's probability."""
        best = proba.argmax(axis=1).tolist()
        keys, classes = self._keys, self.classes
        return [
            {"label": classes[i], "probabilities": dict(zip(keys, row, strict=True))}
            for i, row in zip(best, proba.tolist(), strict=True)
        ]

    def _checked_forest_path(self, manifest: Manifest) -> Proba | None:
        """The faster forest path (:mod:`.forest`), if it answers exactly as scikit-learn
        does (on the model's example, or a row of zeros); None keeps scikit-learn's path."""
        fast = forest_proba(self.model)
        if fast is None:
            return None
        rows = np.zeros((1, len(self.schema.names)))
        if manifest.example is not None:
            with contextlib.suppress(InvalidInput):  # an odd example: zeros will do
                rows = self.schema.matrix([manifest.example], rows=False)
        frame = self._frame(rows) if self._frame_columns is not None else rows
        if agrees(fast, rows, self.model.predict_proba(frame)):
            return fast
        log.warning("%s: the fast forest path disagrees with scikit-learn; not used", manifest.ref)
        return None

    def _output_schema(self) -> dict[str, Any]:
        if not self.classes:
            return {"type": "object", "properties": {"prediction": {"type": "number"}}}
        properties: dict[str, Any] = {"label": {"enum": self.classes}}
        if self._proba:
            properties["probabilities"] = {
                "type": "object",
                "properties": {key: {"type": "number"} for key in self._keys},
            }
        return {"type": "object", "properties": properties, "required": list(properties)}
