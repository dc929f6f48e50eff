"""A hand-written Starlette service: one route, orjson, the model loaded at start.

BENCH_MODEL_DIR=... uvicorn starlette_app:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FOLDER = Path(os.environ["BENCH_MODEL_DIR"])
MODEL = joblib.load(FOLDER / "model.joblib")
META = json.loads((FOLDER / "meta.json").read_text())
FEATURES = META["features"]
FRAME = META.get("frame", False)  # fitted on a DataFrame: one is built per request
CLASSES = [str(c) for c in MODEL.classes_]


async def predict(request: Request) -> Response:
    record = orjson.loads(await request.body())
    if FRAME:
        row = pd.DataFrame([record], columns=FEATURES)
    else:
        row = np.array([[float(record[name]) for name in FEATURES]])
    probabilities = MODEL.predict_proba(row)[0].tolist()
    best = max(range(len(CLASSES)), key=probabilities.__getitem__)
    answer = {
        "label": CLASSES[best],
        "probabilities": dict(zip(CLASSES, probabilities, strict=True)),
    }
    return Response(orjson.dumps(answer), media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
