"""The Azure ML scoring script (``init``/``run``) that azmlinfsrv serves.

The request is Azure ML's usual ``{"data": [[...features...]]}``; the model file sits in
``AZUREML_MODEL_DIR``, which ``azmlinfsrv --model_dir`` sets.
"""

from __future__ import annotations

import json
import os
from typing import Any

import joblib
import numpy as np

model: Any = None
classes: list[str] = []


def init() -> None:
    global model, classes
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    classes = [str(c) for c in model.classes_]


def run(raw_data: str) -> dict[str, Any]:
    rows = np.array(json.loads(raw_data)["data"], dtype=float)
    probabilities = model.predict_proba(rows)[0].tolist()
    best = max(range(len(classes)), key=probabilities.__getitem__)
    return {"label": classes[best], "probabilities": dict(zip(classes, probabilities, strict=True))}
