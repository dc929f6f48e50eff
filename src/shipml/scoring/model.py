"""Zero-code scoring: a model of any flavour answers from its input schema alone.

Classifiers answer ``{"label": …, "probabilities": {class: p, …}}`` (the label is the
most probable class, so it always agrees with the probabilities shown); regressors
answer ``{"prediction": …}``. Requests are checked and converted per request by the
schema (a float64 matrix straight from parsed JSON for plain numbers, per-column lists
otherwise); a batch becomes model input once (one DataFrame in the training dtypes for
models fitted on one) and the flavour's model is called once per batch.

The model's own refusal is the client's fault. A model that answered its example at load
and then raises one of its library's input errors (``ValueError``/``TypeError``, or what
the flavour names) on a request that passed the schema was refused *that request's
values*, e.g. a category ``OneHotEncoder(handle_unknown="error")`` never saw: the client
gets ``422`` with the model's message. Everything else a model raises stays a ``500``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from shipml.errors import InvalidInput, ModelDefinitionError
from shipml.flavours import Flavour, Loaded
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.outputs import answers_of, output_schema
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import Manifest


class ModelScorer:
    batchable = True

    def __init__(self, loaded: Loaded, manifest: Manifest, flavour: Flavour) -> None:
        if manifest.input_schema is None:
            raise ModelDefinitionError(
                f"{manifest.ref} has no input schema; save it with training_data or "
                "feature_names so shipml knows the features"
            )
        self.contract = manifest.contract
        self.flavour = flavour
        self.loaded = loaded
        self.schema = InputSchema(manifest.input_schema)
        self.classes: list[Any] = list(loaded.classes)
        self._keys = [str(c) for c in self.classes]
        self.task = loaded.task
        example = self._example_input(manifest)
        self.output_schema: dict[str, Any] | None = output_schema(
            self.classes, loaded.probabilities, _outputs(loaded, example)
        )
        loaded.warm(example, not self.schema.nullable)

    def _example_input(self, manifest: Manifest) -> Any:
        """The example as model input (or a row of zeros, for an odd example)."""
        frame = self.loaded.frame
        if manifest.example is not None:
            with contextlib.suppress(InvalidInput):
                batch = self.schema.batch([manifest.example], rows=False, frame=frame)
                return self.schema.model_input(batch, frame)
        if self.schema.numeric:
            return self.schema.model_input(np.zeros((1, len(self.schema.names))), frame)
        return None

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        items, single, rows = split_payload(payload)
        return Prepared(self.schema.batch(items, rows, self.loaded.frame), len(items), single)

    def prepare_table(self, features: np.ndarray | list[np.ndarray]) -> Prepared:
        """Features parsed elsewhere (the Open Inference Protocol's tensors): an all-number
        table goes straight to the model; any other goes through the schema's checks per
        value (categories, dates, nulls), as the same rows sent as records would."""
        if self.schema.numeric:
            table = self.schema.table(features)
            return Prepared(table, len(table), False)
        columns = list(features.T) if isinstance(features, np.ndarray) else features
        rows = [list(row) for row in zip(*(c.tolist() for c in columns), strict=True)]
        return Prepared(self.schema.batch(rows, True, self.loaded.frame), len(rows), False)

    def concat(self, parts: list[Any]) -> Any:
        return self.schema.concat(parts)

    def predict(self, data: Any) -> list[dict[str, Any]]:
        if len(data) == 0:
            return []
        loaded = self.loaded
        inputs = self.schema.model_input(data, loaded.frame)
        try:
            output = loaded.predict(inputs)
        except Exception as exc:
            message = self.flavour.refusal(exc)
            if message is None:
                raise
            raise InvalidInput(f"the model refused this input: {message}") from None
        if loaded.probabilities:
            return self._classes_of(output)
        key = "label" if self.classes else "prediction"
        return [{key: value} for value in output.tolist()]

    def _classes_of(self, proba: Any) -> list[dict[str, Any]]:
        """One answer per row: the most probable class and every class's probability."""
        return answers_of(proba, self.classes, self._keys)


def _outputs(loaded: Loaded, example: Any) -> tuple[int, bool] | None:
    """``(width, numeric)`` of a multi-output model's answer (one value per output), from
    its answer to the example; None for one value per row."""
    if loaded.probabilities or example is None:
        return None
    try:
        output = np.asarray(loaded.predict(example))
    except Exception:  # the service's warm-up reports it
        return None
    if output.ndim != 2 or output.shape[1] < 2:
        return None
    return output.shape[1], output.dtype.kind in "iufb"
