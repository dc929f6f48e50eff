"""LightGBM: ``Booster`` objects and the scikit-learn API (``LGBMClassifier``, …).

Saved in LightGBM's text format (``model.txt``, ``Booster.save_model``), which every
later LightGBM reads; it keeps the trees, the parameters and the categories of pandas
``category`` columns. What the scikit-learn classes add — the class labels (which may
be strings) and which of them the model is — goes into the manifest, and the model is
served from the ``Booster`` alone, computing what the class does: a binary classifier's
probabilities are ``[1 - p, p]``, the label the most probable class. So images need
neither scikit-learn nor a pickle. A model trained with a custom objective function
cannot be written as text: it is saved with joblib instead, and answers through its own
``predict_proba``/``predict``.

A ``Booster`` answers by its objective: ``binary`` and ``multiclass``/``multiclassova`` as
a classifier (classes 0…k-1), anything else a prediction. LightGBM's library loads the
system's OpenMP runtime: images get Debian's ``libgomp1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipml.flavours.base import (
    Flavour,
    Loaded,
    Package,
    Saved,
    model_path,
)
from shipml.flavours.pickling import dump_pickle, load_pickle
from shipml.store.manifest import Manifest
from shipml.store.reference import PICKLE_SUFFIXES

FILE = "model.txt"
MULTICLASS = ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr")
BINARY = ("binary",)


class LightGBMModel:
    def __init__(self, model: Any, frame: bool, details: dict[str, Any]) -> None:
        self.model = model
        self.frame = frame
        self._booster = not hasattr(model, "booster_")
        classes = details.get("classes")
        if classes is None and not self._booster and hasattr(model, "classes_"):
            classes = np.asarray(model.classes_).tolist()
        if classes is None and self._booster and details.get("estimator") is None:
            objective = str(model.params.get("objective", "regression"))
            if objective in BINARY:
                classes = [0, 1]
            elif objective in MULTICLASS:
                classes = list(range(int(model.params.get("num_class", 2))))
        self.classes: list[Any] = list(classes or [])
        self.probabilities = bool(self.classes)
        self.task = "classification" if self.classes else "regression"

    def predict(self, data: Any) -> np.ndarray:
        if not self._booster:  # a pickled scikit-learn object (custom objective)
            if self.probabilities:
                return np.asarray(self.model.predict_proba(data))
            return np.asarray(self.model.predict(data))
        output = np.asarray(self.model.predict(data))
        if self.probabilities and output.ndim == 1:  # binary: P(class 1), as LightGBM does
            return np.vstack((1.0 - output, output)).transpose()
        return output

    def warm(self, data: Any, finite: bool) -> None:
        return None


class LightGBMFlavour(Flavour):
    name = "lightgbm"
    library = "lightgbm"
    modules = ("lightgbm",)
    file_suffixes = (".txt",)  # what Booster.save_model writes

    def feature_names(self, model: Any) -> list[str] | None:
        booster = model.booster_ if hasattr(model, "booster_") else model
        return [str(n) for n in booster.feature_name()]

    def fitted_names(self, model: Any) -> list[str] | None:
        # LightGBM takes columns by position and keeps its names with spaces and other
        # characters replaced ("a b" -> "a_b"): they are not the training frame's names.
        return None

    def libraries(self, model: Any) -> list[str]:
        if hasattr(model, "booster_") and callable(getattr(model, "objective", None)):
            return [self.library, "scikit-learn"]  # pickled: the class needs scikit-learn
        return [self.library]

    def save(self, model: Any, folder: Path) -> Saved:
        if not hasattr(model, "booster_"):
            model.save_model(folder / FILE)
            return Saved([FILE], "text", {"class": "Booster"})
        details: dict[str, Any] = {"class": type(model).__name__}
        if callable(getattr(model, "objective", None)):
            return Saved([dump_pickle(model, folder)], "joblib", details)
        model.booster_.save_model(folder / FILE)
        if hasattr(model, "classes_"):
            details["classes"] = np.asarray(model.classes_).tolist()
        details["estimator"] = "classifier" if hasattr(model, "classes_") else "regressor"
        return Saved([FILE], "text", details)

    def read_file(self, path: Path) -> Any:
        import lightgbm  # on use: the library is installed only where its models are

        return lightgbm.Booster(model_file=str(path))

    def load_model(self, folder: Path, manifest: Manifest) -> Any:
        path = model_path(folder, manifest)
        if path.suffix in PICKLE_SUFFIXES:
            return load_pickle(path)
        import lightgbm  # on use: the library is installed only where its models are

        return lightgbm.Booster(model_file=str(path))

    def load(self, folder: Path, manifest: Manifest) -> Loaded:
        model = self.load_model(folder, manifest)
        return LightGBMModel(model, self.frame_of(model, manifest), manifest.flavour)

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return LightGBMModel(model, frame, {})

    def install(self, package: Package) -> Package:
        # lib_lightgbm.so links the system's OpenMP runtime (slim images lack it).
        return Package(package.name, package.version, system=("libgomp1",))


FLAVOUR = LightGBMFlavour()
