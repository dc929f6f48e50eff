"""statsmodels: fitted results (``model.fit()``), answering ``results.predict``.

Saved with joblib, after ``remove_data()`` on a copy (statsmodels has no other format;
its own ``save`` pickles too): the residuals, fitted values and most of the training
arrays stay out of the model file. Answers are ``{"prediction": …}`` — for a ``Logit``
that is the probability of the positive outcome, as ``results.predict`` gives it.

What a request carries depends on how the model was specified:

- **formula API** (``smf.ols("y ~ x1 + np.log(x2) + C(group)", data=df)``): the raw
  columns of the DataFrame (``training_data``, or the frame the formula was fitted on),
  without the outcome; statsmodels applies the formula to each batch, so a category the
  formula never saw is refused with its message (``422``);
- **arrays** (``sm.OLS(y, sm.add_constant(X))``): the design matrix's columns by their
  statsmodels names (``x1``, … or the DataFrame's), **without** the constant: shipml
  puts the column of ones back where ``add_constant`` put it.

A missing value reaches the model as NaN only where statsmodels answers it with a
number (it does not: its predictions are NaN), so fields are nullable only when the
training data had a missing value there.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import TrainingError
from shipml.flavours.base import Flavour, Loaded, Saved, first_line, is_frame
from shipml.flavours.pickling import dump_pickle
from shipml.store.manifest import Manifest


def _formula(results: Any) -> bool:
    return getattr(getattr(results, "model", None), "formula", None) is not None


def _constant(results: Any) -> int | None:
    """Where ``add_constant`` put the column of ones in an array model, if it did."""
    model = getattr(results, "model", None)
    if model is None or _formula(results) or not getattr(model, "k_constant", 0):
        return None
    index = getattr(getattr(model, "data", None), "const_idx", None)
    return int(index) if index is not None else None


class StatsmodelsModel:
    task = "regression"
    classes: list[Any] = []
    probabilities = False

    def __init__(self, model: Any, frame: bool, constant: int | None) -> None:
        self.model = model
        self.frame = frame
        self._constant = constant

    def predict(self, data: Any) -> np.ndarray:
        if self._constant is not None:
            matrix = np.asarray(data, dtype=np.float64)
            data = np.insert(matrix, self._constant, 1.0, axis=1)
        return np.asarray(self.model.predict(data), dtype=np.float64)

    def warm(self, data: Any, finite: bool) -> None:
        return None


class StatsmodelsFlavour(Flavour):
    name = "statsmodels"
    library = "statsmodels"
    modules = ("statsmodels",)

    def feature_names(self, model: Any) -> list[str] | None:
        names = [str(n) for n in model.model.exog_names]
        constant = _constant(model)
        return [n for i, n in enumerate(names) if i != constant]

    def schema_data(self, model: Any, training_data: Any) -> Any:
        """The columns a request carries: for a formula model the DataFrame without the
        outcome; for an array model the design matrix without its constant."""
        _fitted(model)
        if _formula(model):
            data = training_data if training_data is not None else model.model.data.frame
            outcome = [n for n in np.atleast_1d(model.model.endog_names) if n in data.columns]
            return data.drop(columns=outcome) if outcome else data
        constant = _constant(model)
        if training_data is None:
            import pandas as pd  # type: ignore[import-untyped]

            exog = np.asarray(model.model.exog)
            names = [str(n) for n in model.model.exog_names]
            frame = pd.DataFrame(exog, columns=names)
            return frame.drop(columns=names[constant]) if constant is not None else frame
        width = len(model.model.exog_names)
        columns = training_data.shape[1] if hasattr(training_data, "shape") else None
        if constant is not None and columns == width:  # the data still has the constant
            if is_frame(training_data):
                return training_data.drop(columns=training_data.columns[constant])
            return np.delete(np.asarray(training_data), constant, axis=1)
        return training_data

    def takes_frame(self, model: Any, training_data: Any) -> bool:
        return _formula(model)

    def libraries(self, model: Any) -> list[str]:
        return [self.library, "pandas", "patsy"] if _formula(model) else [self.library]

    def save(self, model: Any, folder: Path) -> Saved:
        _fitted(model)
        try:
            light = copy.deepcopy(model)
        except Exception as exc:  # statsmodels rebuilds a formula's design when copied
            raise TrainingError(_unrestorable(model, exc)) from None
        light.remove_data()
        details = {
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "formula": str(model.model.formula) if _formula(model) else None,
            "constant": _constant(model),
        }
        return Saved([dump_pickle(light, folder)], "joblib", details)

    def load(self, folder: Path, manifest: Manifest) -> Loaded:
        model = self.load_model(folder, manifest)
        constant = manifest.flavour.get("constant")
        return StatsmodelsModel(model, self.frame_of(model, manifest), constant)

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return StatsmodelsModel(model, frame, _constant(model))

    def refusal(self, exc: BaseException) -> str | None:
        if type(exc).__name__ in ("PatsyError", "FormulaicError") or isinstance(
            exc, ValueError | TypeError
        ):
            # statsmodels wraps patsy's message ("… The original error message returned
            # by patsy is:" then the message, the formula and carets): keep the message.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            for before, line in itertools.pairwise(lines):
                if before.endswith("is:"):
                    return line
            return first_line(exc)
        return None


def _unrestorable(model: Any, exc: BaseException) -> str:
    """Why a formula model cannot be saved: statsmodels evaluates the formula again whenever
    the results are copied or unpickled (``ModelData.__setstate__``), looking its names up
    in whatever code happens to be running then, so a function defined in the training
    script (``y ~ double_it(x)``) is not found where the model is loaded."""
    formula = getattr(getattr(model, "model", None), "formula", None)
    return (
        f"statsmodels cannot restore this model outside the training script: loading it "
        f"evaluates its formula {str(formula)!r} again and fails ({first_line(exc)}). "
        "Compute that column in the data before fitting, or use numpy (np.log(x)) or "
        "patsy's own functions in the formula"
    )


def _fitted(model: Any) -> None:
    if not hasattr(model, "params") or not hasattr(model, "model"):
        raise TrainingError(
            f"save the fitted results of a statsmodels model (results = model.fit()), not "
            f"the {type(model).__name__} itself"
        )


FLAVOUR = StatsmodelsFlavour()
