"""The two models of PEERS.md, trained once and written in every server's format.

    python -m bench.models train WORK          (in the shipml venv: joblib + shipml store)
    python -m bench.models export FORMAT WORK  (in the venv that has FORMAT's library)

``train`` writes ``WORK/models/<name>/model.joblib`` and ``meta.json`` (features,
classes, the check record and its class), and publishes both models into the shipml
store ``WORK/store``. Each ``export`` reads the joblib files, so every server serves the
very same fitted estimator. Runs inside the benchmark venvs: stdlib imports at the top,
the libraries inside the functions.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_RECORD = [6.7, 3.0, 5.2, 2.3]  # the seed record: virginica
MODELS = ("iris", "digits")


def train(work: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.svm import SVC

    import shipml

    iris = load_iris()
    iris_y = iris.target_names[iris.target]
    with warnings.catch_warnings():
        # scikit-learn 1.9 deprecates SVC(probability=True); PEERS.md measured with it.
        warnings.simplefilter("ignore", FutureWarning)
        iris_model = SVC(probability=True, random_state=0).fit(iris.data, iris_y)
    digits = load_digits()
    digits_model = RandomForestClassifier(n_estimators=100, random_state=0)
    digits_model.fit(digits.data, digits.target)
    digits_features = [f"p{i}" for i in range(64)]
    # The check record: the first digit the forest is sure of (deterministic).
    sure = np.max(digits_model.predict_proba(digits.data), axis=1)
    first = int(np.argmax(sure > 0.9))
    cases: list[tuple[str, Any, Any, list[str], list[float]]] = [
        ("iris", iris_model, iris.data, IRIS_FEATURES, IRIS_RECORD),
        ("digits", digits_model, digits.data, digits_features, digits.data[first].tolist()),
    ]
    for name, model, data, features, record in cases:
        folder = work / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, folder / "model.joblib")
        label = model.predict_proba(np.array([record])).argmax()
        meta = {
            "name": name,
            "features": features,
            "classes": [str(c) for c in model.classes_],
            "record": [float(v) for v in record],
            "label": str(model.classes_[label]),
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        shipml.save_model(model, training_data=data, feature_names=features, name=name)


def export(form: str, work: Path) -> None:
    import joblib

    for name in MODELS:
        model = joblib.load(work / "models" / name / "model.joblib")
        if form == "mlflow":
            import mlflow.sklearn

            mlflow.sklearn.save_model(
                model,
                str(work / "mlflow" / name),
                serialization_format="pickle",
                pyfunc_predict_fn="predict_proba",
            )
        elif form == "bentoml":
            import bentoml

            bentoml.sklearn.save_model(name, model)
        else:
            raise SystemExit(f"unknown model format {form!r}: mlflow or bentoml")


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "train":
        train(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "export":
        export(argv[1], Path(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
