"""scikit-learn, and any other object with a scikit-learn style ``predict``.

Saved with joblib (``model.joblib``): scikit-learn has no format that another version is
promised to read, so the exact versions are recorded, checked at load and pinned in
images, and the file is only opened from a verified manifest. Classifiers answer the
label and every class's probability (``predict_proba``), others ``predict``.

Plain random forests take the faster path of :mod:`.sklearn_forest`, checked on the
model's example at load. skl2onnx converts these models for ``--onnx``.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shipml.flavours import sklearn_checks
from shipml.flavours.base import Flavour, Loaded, Saved
from shipml.flavours.pickling import dump_pickle, pickled_libraries
from shipml.flavours.sklearn_forest import Proba, agrees, forest_proba
from shipml.store.manifest import Manifest

log = logging.getLogger("shipml")
_THREAD = threading.local()
# Always needed where the model runs; recorded, but the image's own pins decide them.
COMMON = ("numpy", "scipy", "joblib")


def _trust_finite_input() -> None:
    """Skip scikit-learn's finiteness scan of every input, in the calling thread.

    The scan costs 10-30 µs per call on a one-row request (a tenth of an iris SVC's
    whole call) and can never fire here: requests are parsed by orjson, which refuses
    NaN, Infinity and numbers beyond a double's range, and the schema admits no ``null``
    for this model. scikit-learn's settings are per thread, so each thread that calls a
    model sets it once.
    """
    if not getattr(_THREAD, "trusted", False):
        import sklearn  # on use: the library is installed only where its models are

        sklearn.set_config(assume_finite=True)
        _THREAD.trusted = True


class SklearnModel:
    """A scikit-learn estimator (or pipeline) as the zero-code scorer calls it."""

    def __init__(self, model: Any, frame: bool, config: dict[str, Any] | None = None) -> None:
        self.model = model
        self.frame = frame
        self.config = config or {}  # scikit-learn's settings when it was saved (_settings)
        classes = getattr(model, "classes_", None)
        if isinstance(classes, list):  # one array per output (MultiOutputClassifier …)
            classes = None  # answered by predict: a label per output
        self.probabilities = hasattr(model, "predict_proba") and classes is not None
        self.classes: list[Any] = np.asarray(classes).tolist() if classes is not None else []
        self.task = "classification" if self.classes else "regression"
        self._finite = False
        self._fast: Proba | None = None

    def predict(self, data: Any) -> np.ndarray:
        if self._finite or _no_missing(data):
            _trust_finite_input()
            if self._fast is not None:
                return self._fast(data)
        elif getattr(_THREAD, "trusted", False):  # a missing value, in a trusting thread
            import sklearn  # on use: the library is installed only where its models are

            with sklearn.config_context(assume_finite=False):
                return self._call(data)
        return self._call(data)

    def _call(self, data: Any) -> np.ndarray:
        if self.config:
            import sklearn  # on use: the library is installed only where its models are

            with sklearn.config_context(**self.config):
                return self._answer(data)
        return self._answer(data)

    def _answer(self, data: Any) -> np.ndarray:
        if self.probabilities:
            return np.asarray(self.model.predict_proba(data))
        return np.asarray(self.model.predict(data))

    def warm(self, data: Any, finite: bool) -> None:
        """Trust finite input when the schema guarantees it, and take the faster forest
        path if it answers exactly as scikit-learn does on the example (for a model that
        may get a missing value, only when it takes a matrix: a batch with NaN then goes
        to scikit-learn, which routes missing values down the trees)."""
        self._finite = finite
        sklearn_checks.install()  # a serving process: plain arrays skip the frame checks
        fast = forest_proba(self.model)
        if fast is None or data is None or (self.frame and not finite):
            return
        if agrees(fast, data, self.model.predict_proba(data)):
            self._fast = fast
            self.frame = False  # the trees take the plain matrix: no DataFrame per call
        else:
            log.warning("the fast forest path disagrees with scikit-learn; not used")


def _settings() -> dict[str, Any]:
    """scikit-learn's global settings that change what a fitted model computes, where they
    differ from the defaults: ``set_config(transform_output="pandas")`` at the top of a
    notebook makes every step hand the next a DataFrame, and a step of the user's own may
    rely on it (``df.assign(...)``). It is kept with the version and set again around
    every call where the model is served; a worker's own process never had it."""
    import sklearn  # on use: the library is installed only where its models are

    output = sklearn.get_config().get("transform_output", "default")
    return {} if output == "default" else {"transform_output": output}


def _no_missing(data: Any) -> bool:
    """A float64 matrix without NaN (a JSON null is the only way NaN gets in)."""
    return type(data) is np.ndarray and data.dtype == np.float64 and not np.isnan(data).any()


class SklearnFlavour(Flavour):
    name = "sklearn"
    library = "scikit-learn"
    modules = ("sklearn",)
    onnx_conversion = True

    def detect(self, model: Any) -> bool:
        # Last in the registry: whatever has a scikit-learn style predict is served so.
        return super().detect(model) or callable(getattr(model, "predict", None))

    def unservable(self, model: Any) -> str | None:
        if callable(getattr(model, "predict", None)):
            return None
        return (
            f"a {type(model).__name__} has no predict(): a transformer (PCA, a pipeline "
            "ending in a scaler or an encoder) or a clustering that cannot place new rows "
            "(DBSCAN) answers nothing for a request by itself. End the pipeline with an "
            "estimator, or serve it with code of your own: a predictor class whose predict "
            "calls transform (docs/scoring.md, the batch class)"
        )

    def libraries(self, model: Any) -> list[str]:
        found = [name for name in pickled_libraries(model) if name not in COMMON]
        own = [self.library] if self.library in found or super().detect(model) else []
        return [*own, *(name for name in found if name != self.library)]

    def save(self, model: Any, folder: Path) -> Saved:
        details = {"class": _class_name(model), "config": _settings()}
        return Saved([dump_pickle(model, folder)], "joblib", details)

    def load(self, folder: Path, manifest: Manifest) -> Loaded:
        model = self.load_model(folder, manifest)
        config = manifest.flavour.get("config") or {}
        return SklearnModel(model, self.frame_of(model, manifest), dict(config))

    def frame_of(self, model: Any, manifest: Manifest) -> bool:
        recorded = manifest.flavour.get("frame")
        return hasattr(model, "feature_names_in_") if recorded is None else bool(recorded)

    def takes_frame(self, model: Any, training_data: Any) -> bool:
        return hasattr(model, "feature_names_in_")

    def wrap(self, model: Any, frame: bool) -> Loaded:
        return SklearnModel(model, frame)

    def to_onnx(self, model: Any, features: int, name: str) -> Any:
        """The skl2onnx graph of ``model``, probabilities as a plain tensor."""
        # on use: the library is installed only where its models are
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        # Probabilities as one float tensor, not a list of maps (only where there are any).
        proba = hasattr(model, "classes_") and hasattr(model, "predict_proba")
        options = {id(model): {"zipmap": False}} if proba else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = convert_sklearn(
                model,
                initial_types=[("input", FloatTensorType([None, features]))],
                options=options,
                name=name,  # a fixed graph name: the same model gives the same bytes
            )
        for warning in caught:  # e.g. scikit-learn deprecations of attributes skl2onnx reads
            log.info("converting to ONNX: %s", warning.message)
        return graph


def _class_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


FLAVOUR = SklearnFlavour()
