"""A hand-written Flask service, the tutorial way: gunicorn sync workers.

BENCH_MODEL_DIR=... gunicorn --workers 2 flask_app:app
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from flask import Flask, jsonify, request

FOLDER = Path(os.environ["BENCH_MODEL_DIR"])
MODEL = joblib.load(FOLDER / "model.joblib")
META = json.loads((FOLDER / "meta.json").read_text())
FEATURES = META["features"]
FRAME = META.get("frame", False)  # fitted on a DataFrame: one is built per request
CLASSES = [str(c) for c in MODEL.classes_]

app = Flask(__name__)


@app.post("/predict")
def predict():  # type: ignore[no-untyped-def]
    record = request.get_json()
    if FRAME:
        row = pd.DataFrame([record], columns=FEATURES)
    else:
        row = np.array([[float(record[name]) for name in FEATURES]])
    probabilities = MODEL.predict_proba(row)[0].tolist()
    best = max(range(len(CLASSES)), key=probabilities.__getitem__)
    return jsonify(
        label=CLASSES[best], probabilities=dict(zip(CLASSES, probabilities, strict=True))
    )
