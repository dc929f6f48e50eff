"""MLflow's side of tests/integration/test_mlflow_models.py: real MLflow model folders, and
MLflow's own predictions for the requests the test sends shipml.

Run with the Python of the Azure ML reference venv (scripts/azmlinfsrv.sh installs
mlflow-skinny 3.17.2 there, with the same numpy, pandas and scikit-learn as shipml's venv):

    .venv-azmlinfsrv/bin/python tests/mlflow_reference.py OUT_DIR

For each case it writes OUT_DIR/<case>/ with ``mlflow.sklearn.save_model`` and
OUT_DIR/<case>.json: the request records and what ``mlflow.pyfunc.load_model(...).predict``
answers for them, as MLflow's scoring server would (a DataFrame of the records, the
signature enforced). Nothing of shipml is imported here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def census() -> tuple[pd.DataFrame, np.ndarray]:
    """Census-like rows: numbers with gaps, an integer, a boolean, strings with gaps."""
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "education_years": rng.integers(6, 20, n),
            "hours_per_week": rng.normal(40, 10, n).round(1),
            "owns_home": rng.random(n) < 0.4,
            "workclass": rng.choice(["private", "self-emp", "state-gov"], n).astype(object),
            "occupation": rng.choice(["admin", "craft", "sales", "tech"], n).astype(object),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.1, "workclass"] = None
    score = frame["education_years"] + frame["hours_per_week"] / 10 + frame["owns_home"] * 3
    return frame, np.where(score > score.median(), ">50K", "<=50K")


def census_model(frame: pd.DataFrame, target: np.ndarray) -> object:
    numbers = ["age", "education_years", "hours_per_week"]
    strings = ["workclass", "occupation"]
    prepare = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
            (
                "strings",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                strings,
            ),
        ],
        remainder="passthrough",  # owns_home
    )
    model = make_pipeline(prepare, HistGradientBoostingClassifier(max_iter=30, random_state=0))
    return model.fit(frame, target)


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """JSON records as a client sends them: NaN and None are null."""
    return json.loads(frame.to_json(orient="records"))


def write(
    out: Path, case: str, model: object, sent: list[dict[str, object]], **save: object
) -> None:
    folder = out / case
    mlflow.sklearn.save_model(model, str(folder), **save)  # type: ignore[arg-type]
    answers = mlflow.pyfunc.load_model(str(folder)).predict(pd.DataFrame(sent))
    (out / f"{case}.json").write_text(
        json.dumps({"records": sent, "mlflow": np.asarray(answers).tolist()})
    )


def main(out: Path) -> None:
    frame, target = census()
    model = census_model(frame, target)
    sent = records(frame.head(40))
    sent.append({**sent[0], "age": None, "workclass": None})  # both optional: nulls allowed
    write(
        out,
        "census",
        model,
        sent,
        signature=infer_signature(frame),
        serialization_format="pickle",
        pyfunc_predict_fn="predict_proba",
    )

    iris = load_iris(as_frame=True)
    x = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    y = iris.target_names[iris.target]
    logistic = LogisticRegression(max_iter=500).fit(x, y)
    write(
        out,
        "iris",
        logistic,
        records(x.iloc[::10]),
        signature=infer_signature(x),
        serialization_format="cloudpickle",  # MLflow 2's default (3's is skops)
    )

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(200, 3))
    forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(matrix, matrix.sum(1))
    rows = pd.DataFrame(matrix[:20])  # MLflow's server takes them as a DataFrame
    values = json.loads(rows.to_json(orient="values"))
    write(out, "unsigned", forest, values, serialization_format="cloudpickle")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
