"""Score sentiment: an Azure ML entry script (init/run), served unchanged by shipml.

Accepts one record, a list of records, or {"inputs": [records]}, each record being
{"text": "..."}. Answers {"score": P(positive) from 0.0 to 1.0, "label": "positive" or
"negative"} per record: one answer for one record, a list for a list.
"""

import json
import os

import joblib

model = None


def init():
    """Load the model once per worker from the folder Azure ML (or shipml) names."""
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(raw_data):
    """Score the JSON request body ``raw_data`` (a string, as Azure ML passes it)."""
    data = json.loads(raw_data)
    if isinstance(data, dict) and "inputs" in data:
        data = data["inputs"]
    records = data if isinstance(data, list) else [data]
    texts = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError('each record must be {"text": "..."}')
        texts.append(record["text"])
    positive = list(model.classes_).index(1)
    scores = model.predict_proba(texts)[:, positive] if texts else []
    answers = [
        {"score": round(float(s), 4), "label": "positive" if s >= 0.5 else "negative"}
        for s in scores
    ]
    return answers if isinstance(data, list) else answers[0]
