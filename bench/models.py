"""The benchmark models, trained once and written in every server's format: the two of
PEERS.md (iris, digits) and a realistic tabular one (issue 16): a census-like DataFrame
with mixed columns and missing values, a ColumnTransformer (imputers, one-hot, scaler) in
front of a HistGradientBoostingClassifier, one named record per request.

    python -m bench.models train WORK          (in the shipml venv: joblib + shipml store)
    python -m bench.models export FORMAT WORK  (in the venv that has FORMAT's library)

``train`` writes ``WORK/models/<name>/model.joblib`` and ``meta.json`` (features,
classes, the check record, its class and, for the tabular model, the probabilities the
model gives it in-process, which every server's answer must match), and publishes the
models into the shipml store ``WORK/store``. Each ``export`` reads the joblib files, so
every server serves the very same fitted estimator. Runs inside the benchmark venvs:
stdlib imports at the top, the libraries inside the functions.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_RECORD = [6.7, 3.0, 5.2, 2.3]  # the seed record: virginica
MODELS = ("iris", "digits", "tabular")
# The tabular model's columns: numbers (float, some missing) and words (str, some missing).
TABULAR_NUMBERS = ["age", "education_years", "hours_per_week", "capital_gain", "capital_loss"]
TABULAR_WORDS = [
    "workclass", "education", "marital_status", "occupation", "relationship", "sex", "country",
]  # fmt: skip
TABULAR_ROWS = 5000


def census(rows: int = TABULAR_ROWS, seed: int = 0) -> tuple[Any, Any]:
    """A census-like table (12 columns, ~3 % missing in four of them) and an income label
    that depends on both kinds of column. Deterministic."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    words = {
        "workclass": ["private", "self-emp", "local-gov", "state-gov", "federal-gov"],
        "education": ["hs-grad", "some-college", "bachelors", "masters", "doctorate", "11th"],
        "marital_status": ["married", "never-married", "divorced", "separated", "widowed"],
        "occupation": ["admin", "craft", "exec", "sales", "service", "tech", "transport"],
        "relationship": ["husband", "wife", "own-child", "unmarried", "not-in-family"],
        "sex": ["female", "male"],
        "country": ["us", "mexico", "philippines", "germany", "canada", "india", "other"],
    }
    frame = pd.DataFrame(
        {
            "age": rng.integers(17, 90, rows).astype(float),
            "education_years": rng.integers(1, 17, rows).astype(float),
            "hours_per_week": rng.normal(40, 12, rows).clip(1, 99).round(),
            "capital_gain": np.where(rng.random(rows) < 0.1, rng.exponential(8000, rows), 0.0),
            "capital_loss": np.where(rng.random(rows) < 0.05, rng.exponential(1500, rows), 0.0),
            **{name: rng.choice(choices, rows) for name, choices in words.items()},
        }
    )
    score = (
        (frame["age"] - 40) / 15
        + (frame["education_years"] - 10) / 3
        + (frame["hours_per_week"] - 40) / 10
        + frame["capital_gain"] / 5000
        + frame["marital_status"].eq("married") * 1.2
        + frame["occupation"].isin(["exec", "tech"]) * 0.8
        + rng.normal(0, 1, rows)
    )
    label = np.where(score > 1.0, ">50K", "<=50K")
    for name in ("age", "hours_per_week", "workclass", "occupation"):
        frame.loc[rng.random(rows) < 0.03, name] = np.nan
    return frame[TABULAR_NUMBERS + TABULAR_WORDS], label


def tabular_model() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prepare = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             TABULAR_NUMBERS),
            ("words", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                    OneHotEncoder(handle_unknown="ignore")), TABULAR_WORDS),
        ],
        sparse_threshold=0,
    )  # fmt: skip
    return make_pipeline(prepare, HistGradientBoostingClassifier(random_state=0))


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
    train_tabular(work)


def train_tabular(work: Path) -> None:
    """Fitted on the DataFrame, as users do; the check record is a complete row (JSON has
    no NaN, and not every peer takes null) whose probabilities are kept to compare."""
    import joblib
    import pandas as pd

    import shipml

    frame, label = census()
    model = tabular_model().fit(frame, label)
    complete = frame.dropna()
    row = complete.iloc[[int(len(complete) // 2)]]
    record = [
        float(value) if name in TABULAR_NUMBERS else str(value)
        for name, value in row.iloc[0].items()
    ]
    check = pd.DataFrame([dict(zip(frame.columns, record, strict=True))])
    probabilities = model.predict_proba(check)[0]
    folder = work / "models" / "tabular"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    # a few rows for the frameworks that want a signature or a sample (MLflow)
    frame.head(50).to_json(folder / "sample.json", orient="records")
    meta = {
        "name": "tabular",
        "features": list(frame.columns),
        "classes": [str(c) for c in model.classes_],
        "record": record,
        "label": str(model.classes_[probabilities.argmax()]),
        "probabilities": [float(p) for p in probabilities],
        "frame": True,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    shipml.save_model(model, training_data=frame, name="tabular")


def export(form: str, work: Path) -> None:
    import joblib

    for name in MODELS:
        model = joblib.load(work / "models" / name / "model.joblib")
        if form == "mlflow":
            import mlflow.sklearn

            signature = None
            if name == "tabular":  # MLflow's docs: log a DataFrame model with its signature
                import pandas as pd
                from mlflow.models import infer_signature

                sample = pd.read_json(work / "models" / name / "sample.json", orient="records")
                signature = infer_signature(sample, model.predict_proba(sample))
            mlflow.sklearn.save_model(
                model,
                str(work / "mlflow" / name),
                serialization_format="pickle",
                pyfunc_predict_fn="predict_proba",
                signature=signature,
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
