"""The BentoML 1.4 service: the model from BentoML's model store, two workers.

``BENCH_MODEL`` names the model (iris or digits) and ``BENCH_BATCHABLE=1`` turns on
BentoML's adaptive batching for the API. The request is ``{"inputs": [[...features...]]}``
(a batch of one row); the answer the probability rows.

    BENTOML_HOME=... BENCH_MODEL=iris bentoml serve bentoml_service:Model --port 3000
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import pandas as pd

MODEL = os.environ["BENCH_MODEL"]
BATCHABLE = os.environ.get("BENCH_BATCHABLE") == "1"


@bentoml.service(workers=2)
class Model:
    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(f"{MODEL}:latest")

    @bentoml.api(batchable=BATCHABLE)
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(inputs)


@bentoml.service(workers=2)
class Tabular:
    """The DataFrame model, the way BentoML's docs type a pandas input: records in JSON."""

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(f"{MODEL}:latest")

    @bentoml.api(batchable=BATCHABLE)
    def predict(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(inputs)
