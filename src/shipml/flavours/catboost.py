"""CatBoost: ``CatBoost`` objects and its own scikit-learn style classes.

Saved in CatBoost's binary format (``model.cbm``, ``save_model``), which later CatBoost
versions load; it keeps the trees, the categorical features and the class labels, and
loads back into the same class (``CatBoostClassifier``, ``CatBoostRegressor``,
``CatBoostRanker`` or plain ``CatBoost``), so answers are what the model gave in
training. A plain ``CatBoost`` answers as a classifier (its class labels and
``predict(prediction_type="Probability")``) when its loss is a classification loss,
else its ``predict``.

CatBoost reports every problem as ``CatBoostError``; raised while predicting for a
request that passed the schema (the model answered its example at load), it is that
request's values: ``422``. Its categorical features take strings or integers, never a
missing value, so they are not nullable; its numeric features are.

Images install CatBoost without its declared dependencies (matplotlib, plotly and
graphviz draw training plots); it imports numpy, scipy, pandas and six.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import IntegrityError
from shipml.flavours.base import (
    Flavour,
    Loaded,
    Package,
    Saved,
    first_line,
    model_path,
)
from shipml.flavours.pickling import load_pickle
from shipml.store.manifest import Manifest
from shipml.store.reference import PICKLE_SUFFIXES

FILE = "model.cbm"
CLASSES = ("CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker", "CatBoost")
CLASSIFICATION_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


class CatBoostModel:
    def __init__(self, model: Any, frame: bool) -> None:
        self.model = model
        self.frame = frame
        kind = _kind(model)
        if kind == "CatBoost":
            loss = str(model.get_all_params().get("loss_function", "")).split(":")[0]
            self._proba = loss in CLASSIFICATION_LOSSES
        else:
            self._proba = kind == "CatBoostClassifier"
        self.classes: list[Any] = (
            np.asarray(model.classes_).tolist()
            if self._proba and model.classes_ is not None
            else []
        )
        self.probabilities = self._proba
        self.task = "classification" if self._proba else "regression"
        self._generic = kind == "CatBoost"

    def predict(self, data: Any) -> np.ndarray:
        if not self._proba:
            return np.asarray(self.model.predict(data))
        if self._generic:
            return np.asarray(self.model.predict(data, prediction_type="Probability"))
        return np.asarray(self.model.predict_proba(data))

    def warm(self, data: Any, finite: bool) -> None:
        return None


def _kind(model: Any) -> str:
    return next((k.__name__ for k in type(model).__mro__ if k.__name__ in CLASSES), "CatBoost")


class CatBoostFlavour(Flavour):
    name = "catboost"
    library = "catboost"
    modules = ("catboost", "_catboost")
    runtime = ("catboost",)
    file_suffixes = (".cbm",)  # what save_model writes by default

    def feature_names(self, model: Any) -> list[str] | None:
        names = model.feature_names_
        return [str(n) for n in names] if names else None

    def save(self, model: Any, folder: Path) -> Saved:
        model.save_model(str(folder / FILE), format="cbm")
        return Saved([FILE], "cbm", {"class": _kind(model)})

    def read_file(self, path: Path) -> Any:
        import catboost  # on use: the library is installed only where its models are

        return catboost.CatBoost().load_model(str(path), format="cbm")

    def load_model(self, folder: Path, manifest: Manifest) -> Any:
        path = model_path(folder, manifest)
        if path.suffix in PICKLE_SUFFIXES:
            return load_pickle(path)
        import catboost  # on use: the library is installed only where its models are

        kind = str(manifest.flavour.get("class", "CatBoost"))
        if kind not in CLASSES:
            raise IntegrityError(f"{manifest.ref}: unknown CatBoost class {kind!r}")
        model = getattr(catboost, kind)()
        model.load_model(str(path), format="cbm")
        return model

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return CatBoostModel(model, frame)

    def refusal(self, exc: BaseException) -> str | None:
        if type(exc).__name__ == "CatBoostError":
            return first_line(exc)
        return super().refusal(exc)

    def install(self, package: Package) -> Package:
        needs = ("numpy", "scipy", "pandas", "six")
        return Package(package.name, package.version, no_deps=True, needs=needs)


FLAVOUR = CatBoostFlavour()
