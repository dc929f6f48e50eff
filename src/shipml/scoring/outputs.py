"""What a zero-code model answers, one record per row (the ONNX Runtime path answers the same).

A classifier answers its most probable class and each class's probability; a regressor
its prediction. Inputs far outside the training data can overflow a model into NaN or
infinite numbers: those are written as ``null``, and such a row has no class.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def answers_of(proba: Any, classes: list[Any], keys: list[str]) -> list[dict[str, Any]]:
    """One answer per row of class probabilities: the most probable class and every
    class's probability; no class (``null``) where the probabilities are not numbers."""
    best: list[Any] = proba.argmax(axis=1).tolist()
    if np.isnan(proba).any():  # inputs far outside the training data overflow the model
        lost = np.isnan(proba).any(axis=1).tolist()
        best = [None if gone else i for i, gone in zip(best, lost, strict=True)]
    named = [*classes, None]
    return [
        {"label": named[-1 if i is None else i], "probabilities": dict(zip(keys, row, strict=True))}
        for i, row in zip(best, proba.tolist(), strict=True)
    ]


def output_schema(
    classes: list[Any], probabilities: bool, outputs: tuple[int, bool] | None = None
) -> dict[str, Any]:
    """What a zero-code model answers (the ONNX Runtime path answers the same); a
    multi-output model's ``prediction`` is a list of ``outputs[0]`` values."""
    if outputs is not None:
        width, numeric = outputs
        items = {"type": ["number", "null"]} if numeric else {}
        values = {"type": "array", "items": items, "minItems": width, "maxItems": width}
        return {
            "type": "object",
            "properties": {"prediction": values},
            "required": ["prediction"],
            "additionalProperties": False,
        }
    if not classes:
        return {
            "type": "object",
            # null: the model's answer was not a number (NaN or infinite, for inputs far
            # outside what it was trained on)
            "properties": {"prediction": {"type": ["number", "null"]}},
            "required": ["prediction"],
            "additionalProperties": False,
        }
    # label null: no class when the probabilities are not numbers (same inputs as above)
    properties: dict[str, Any] = {"label": {"enum": [*classes, None]}}
    if probabilities:
        properties["probabilities"] = {
            "type": "object",
            "properties": {str(c): {"type": ["number", "null"]} for c in classes},
            "required": [str(c) for c in classes],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
