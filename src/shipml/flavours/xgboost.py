"""XGBoost: ``Booster`` objects and the scikit-learn API (``XGBClassifier``, …).

Saved in XGBoost's own UBJSON format (``model.ubj``, ``save_model``), which XGBoost
promises to load in later versions, unlike a pickle. The scikit-learn classes keep
their attributes in it (classes, best iteration) and load back into the same class, so
answers are the same bits as in training (``predict_proba``/``predict``); they need
scikit-learn where they run, a ``Booster`` does not.

A ``Booster`` answers by its objective: ``binary:logistic`` and ``multi:softprob`` as a
classifier (classes 0…k-1, probabilities; the binary one's probability of class 1 is
what ``Booster.predict`` returns), ``multi:softmax``/``binary:hinge`` a label, anything
else a prediction.

Images install XGBoost without its declared dependencies: on Linux x86_64 it declares
NVIDIA's NCCL (~200 MB), which only multi-GPU training loads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import IntegrityError
from shipml.flavours.base import (
    Flavour,
    Loaded,
    Package,
    Saved,
    model_path,
)
from shipml.flavours.pickling import load_pickle
from shipml.store.manifest import Manifest
from shipml.store.reference import PICKLE_SUFFIXES

FILE = "model.ubj"
CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "XGBRanker")
PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")
LABEL_OBJECTIVES = ("multi:softmax", "binary:hinge")
# "[10:04:31] /path/to/src/data/file.h:29: " before XGBoost's own message.
_LOCATION = re.compile(r"^\[[\d:]+\] \S+?:\d+: ")


class XGBoostModel:
    def __init__(self, model: Any, frame: bool) -> None:
        self.model = model
        self.frame = frame
        self._booster = not hasattr(model, "get_booster")
        self.probabilities = False
        self.classes: list[Any] = []
        self._binary = False
        if self._booster:
            objective, classes = _objective(model)
            self.probabilities = objective in PROBABILITY_OBJECTIVES
            self._binary = objective == "binary:logistic"
            if self.probabilities or objective in LABEL_OBJECTIVES:
                self.classes = list(range(max(classes, 2)))
        elif hasattr(model, "classes_"):
            self.classes = np.asarray(model.classes_).tolist()
            self.probabilities = hasattr(model, "predict_proba")
        self.task = "classification" if self.classes else "regression"

    def predict(self, data: Any) -> np.ndarray:
        if not self._booster:
            if self.probabilities:
                return np.asarray(self.model.predict_proba(data))
            return np.asarray(self.model.predict(data))
        output = np.asarray(self.model.inplace_predict(data))
        if self._binary:
            return np.column_stack([1.0 - output, output])
        if self.classes and not self.probabilities:
            return output.astype(np.int64)
        return output

    def warm(self, data: Any, finite: bool) -> None:
        return None


def _objective(booster: Any) -> tuple[str, int]:
    learner = json.loads(booster.save_config())["learner"]
    classes = int(learner.get("learner_model_param", {}).get("num_class", "0") or 0)
    return str(learner["objective"]["name"]), classes


class XGBoostFlavour(Flavour):
    name = "xgboost"
    library = "xgboost"
    modules = ("xgboost",)
    file_suffixes = (".json", ".ubj")  # what Booster.save_model writes, as XGBoost advises

    def read_file(self, path: Path) -> Any:
        import xgboost  # on use: the library is installed only where its models are

        return xgboost.Booster(model_file=str(path))

    def feature_names(self, model: Any) -> list[str] | None:
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        if booster.feature_names:
            return [str(n) for n in booster.feature_names]
        return [f"f{i}" for i in range(booster.num_features())]

    def libraries(self, model: Any) -> list[str]:
        # The scikit-learn classes cannot be made without scikit-learn installed.
        return [self.library, "scikit-learn"] if hasattr(model, "get_booster") else [self.library]

    def save(self, model: Any, folder: Path) -> Saved:
        kind = type(model).__name__
        if kind not in (*CLASSES, "Booster"):
            kind = next((k.__name__ for k in type(model).__mro__ if k.__name__ in CLASSES), "")
            if not kind:
                raise IntegrityError(f"cannot save a {type(model).__name__} as an XGBoost model")
        model.save_model(folder / FILE)
        return Saved([FILE], "ubj", {"class": kind})

    def load_model(self, folder: Path, manifest: Manifest) -> Any:
        import xgboost  # on use: the library is installed only where its models are

        path = model_path(folder, manifest)
        if path.suffix in PICKLE_SUFFIXES:
            return load_pickle(path)
        kind = str(manifest.flavour.get("class", "Booster"))
        if kind not in (*CLASSES, "Booster"):
            raise IntegrityError(f"{manifest.ref}: unknown XGBoost class {kind!r}")
        model = getattr(xgboost, kind)()
        model.load_model(path)
        return model

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return XGBoostModel(model, frame)

    def refusal(self, exc: BaseException) -> str | None:
        message = super().refusal(exc)
        return _LOCATION.sub("", message) if message else None

    def install(self, package: Package) -> Package:
        return Package(package.name, package.version, no_deps=True, needs=("numpy", "scipy"))


FLAVOUR = XGBoostFlavour()
