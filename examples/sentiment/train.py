"""Train a sentiment model: TF-IDF word 1-2 grams + logistic regression.

Data: 22,070 real labelled English sentences (UCI Sentiment Labelled Sentences and the
VADER ground truth, see data/README.md). Reports 5-fold cross-validated accuracy, then
fits on everything and hands the model to shipml; score.py serves it.
"""

import csv
import gzip
import time
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

import shipml

DATA = Path(__file__).resolve().parent / "data" / "sentiment.tsv.gz"


def load() -> tuple[list[str], list[int]]:
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [row["text"] for row in rows], [int(row["label"]) for row in rows]


def pipeline():
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(C=4, max_iter=1000),
    )


started = time.perf_counter()
texts, labels = load()
print(f"loaded {len(texts)} sentences ({sum(labels)} positive)")
folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
scores = cross_val_score(pipeline(), texts, labels, cv=folds, n_jobs=2)
print(f"5-fold accuracy {scores.mean():.3f} ± {scores.std():.3f}")
model = pipeline().fit(texts, labels)
print(f"trained in {time.perf_counter() - started:.1f}s")
shipml.save_model(
    model,
    input_example={"text": "I love this, it is wonderful"},
    training_data=texts,
    metrics={"accuracy": scores.mean(), "accuracy_std": scores.std()},
)
