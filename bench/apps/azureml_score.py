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
import pandas as pd

model: Any = None
classes: list[str] = []
frame = False  # a DataFrame model: Azure ML's pandas examples build one from records


def init() -> None:
    global model, classes, frame
    folder = os.environ["AZUREML_MODEL_DIR"]
    model = joblib.load(os.path.join(folder, "model.joblib"))
    classes = [str(c) for c in model.classes_]
    with open(os.path.join(folder, "meta.json")) as meta:
        frame = json.load(meta).get("frame", False)


def run(raw_data: str) -> Any:
    data = json.loads(raw_data)["data"]
    rows = pd.DataFrame(data) if frame else np.array(data, dtype=float)
    probabilities = model.predict_proba(rows)[0].tolist()
    best = max(range(len(classes)), key=probabilities.__getitem__)
    return {"label": classes[best], "probabilities": dict(zip(classes, probabilities, strict=True))}
