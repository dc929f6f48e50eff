"""scikit-learn's frame checks answered at once for plain arrays, and "fitted" and the tags
remembered per estimator (flavours/sklearn_checks.py): models answer, warn and fail exactly
as under scikit-learn's own checks, and a user's process that saves a model is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

# Run in a fresh interpreter: scikit-learn's own functions first, then the same calls
# with the shortcut installed; the two must agree on every answer, warning and error.
DIFFERENTIAL = r"""
import json, warnings
import numpy as np, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.utils import validation

rng = np.random.default_rng(0)
X = rng.normal(size=(120, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
frame = pd.DataFrame(X, columns=list("abcd"))
mixed = frame.assign(kind=np.where(y == 1, "u", "v"))
text_model = make_pipeline(
    ColumnTransformer([("n", StandardScaler(), list("abcd")), ("t", OneHotEncoder(), ["kind"])]),
    HistGradientBoostingClassifier(max_iter=20, random_state=0),
).fit(mixed, y)
models = {
    "svc": SVC(probability=True, random_state=0).fit(X, y),
    "logistic": LogisticRegression().fit(X, y),
    "scaled-knn": make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X, y),
    "hgb": HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y),
    "ridge-on-frame": Ridge().fit(frame, X[:, 0]),
}
calls = [(name, "rows", X[:7]) for name in models]
calls += [(name, "one-row", X[:1]) for name in models]
calls += [("ridge-on-frame", "frame", frame[:5]), ("logistic", "frame", frame[:5])]
calls += [("logistic", "list", X[:3].tolist()), ("logistic", "too-narrow", X[:3, :3])]
calls += [("logistic", "masked", np.ma.masked_array(X[:3])), ("logistic", "text", np.array([["a"] * 4]))]
calls += [("text-model", "frame", mixed[:6]), ("text-model", "renamed", mixed.rename(columns={"a": "z"})[:2])]
models["text-model"] = text_model
probes = [X[:2], X[:2].astype(np.int64), np.array(["a", "b"]), np.ma.masked_array(X[:2]), frame[:2],
          frame["a"], pd.DataFrame({0: [1.0], "b": [2.0]}), X[:2].tolist()]

def run():
    answers = []
    for name, what, data in calls:
        model = models[name]
        call = model.predict_proba if hasattr(model, "predict_proba") else model.predict
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = np.asarray(call(data)).tolist()
            except Exception as exc:
                out = f"{type(exc).__name__}: {exc}"
        answers.append([name, what, out, sorted(str(w.message) for w in caught)])
    for data in probes:
        try:
            names = validation._get_feature_names(data)
            names = None if names is None else list(map(str, names))
        except Exception as exc:
            names = f"{type(exc).__name__}: {exc}"
        answers.append(["probe", type(data).__name__, names, bool(validation._nw_into_df_or_series(data))])
    return answers

def fitted_late():
    # asked before it is fitted, then fitted: errors first, then answers (a remembered
    # "not fitted" would keep failing)
    model, out = LogisticRegression(), []
    for step in ("unfitted", "unfitted again", "fit", "fitted"):
        if step == "fit":
            model.fit(X, y)
            continue
        try:
            out.append(np.asarray(model.predict_proba(X[:2])).tolist())
        except Exception as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out

import shipml
shipml.save_model(models["logistic"], training_data=X, name="plain")  # the user's process
saved = validation._get_feature_names.__module__
before, late_before = run(), fitted_late()
from shipml.flavours import sklearn_checks
installed = sklearn_checks.install()
after = run()
after_again = run()  # now answered from what the first run remembered
print(json.dumps({"installed": installed, "before": before, "after": after,
                  "after_again": after_again, "saved": saved,
                  "late_before": late_before, "late_after": fitted_late(),
                  "wrapped": [f.__module__ for f in (validation._get_feature_names,
                              validation._is_fitted, validation.get_tags)]}))
"""


def differential() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DIFFERENTIAL],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_answers_warnings_and_errors_are_scikit_learns_own() -> None:
    result = differential()
    assert result["saved"] == "sklearn.utils.validation"  # save_model changed nothing
    assert result["installed"] is True
    assert result["wrapped"] == ["shipml.flavours.sklearn_checks"] * 3
    assert result["after"] == result["before"]  # exact: floats compared as JSON, bit for bit
    assert result["after_again"] == result["before"]  # with "fitted" and tags remembered
    # an estimator asked before it is fitted fails each time, then answers once fitted
    late = result["late_after"]
    assert late == result["late_before"]
    assert late[0] == late[1] and late[0].startswith("NotFittedError")
    assert isinstance(late[2], list)
    by_call = {(name, what): (out, caught) for name, what, out, caught in result["after"]}
    # the checks that matter still fire: a frame's names are still checked and warned of
    assert any("feature names" in w for w in by_call[("ridge-on-frame", "rows")][1])
    assert any("feature names" in w for w in by_call[("logistic", "frame")][1])
    assert str(by_call[("text-model", "renamed")][0]).startswith("ValueError")
    assert str(by_call[("logistic", "too-narrow")][0]).startswith("ValueError")
