"""The flavour protocol: what shipml must know about one machine-learning library.

A *flavour* is the one place that knows a library: how to recognise its models, write
them to files (its native format where it has a stable one), load them back, call them
on a batch of rows, which libraries they need and how an image installs them. Nothing
else in shipml names a library: saving, the loader, the scorer, the image build and the
server ask the flavour (:mod:`shipml.flavours` holds the registry).

Adding a flavour is one module with a subclass of :class:`Flavour` and one line in
``shipml.flavours.REGISTRY``. A flavour module imports its library only inside its
methods: detection reads ``type(model).__module__`` first, so a model of one library
never makes shipml import another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shipml.errors import IntegrityError
from shipml.flavours.pickling import dump_pickle, load_pickle
from shipml.store.manifest import Manifest
from shipml.store.paths import inside

# Exceptions by which a library says "this input is wrong" (Python's convention for a bad
# argument value or type). Anything else raised by a model is a failure of the model.
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError)
MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class Package:
    """A package a serve image needs, and how it must be installed.

    ``no_deps`` packages are installed without the dependencies they declare, and
    ``needs`` are installed instead: XGBoost's Linux wheel declares NVIDIA's NCCL
    (~200 MB of GPU libraries) that a CPU serve image never loads.
    """

    name: str
    version: str | None = None  # the trained-with version to pin; None leaves it free
    no_deps: bool = False
    needs: tuple[str, ...] = ()
    # Debian packages of shared libraries it loads from the system (LightGBM: libgomp1).
    system: tuple[str, ...] = ()


@dataclass
class Saved:
    """What :meth:`Flavour.save` wrote: files (the model file first) and facts to record."""

    files: list[str]
    format: str
    details: dict[str, Any] = field(default_factory=dict)


class Loaded(Protocol):
    """A model ready to answer, as the zero-code scorer sees it.

    ``predict`` takes a batch (a float64 matrix, an object matrix, or a pandas DataFrame
    when ``frame`` is true) and returns an array with one entry per row: class
    probabilities ``(n, classes)`` when ``probabilities``, else labels (classifiers) or
    values (regressors), ``(n,)`` or ``(n, outputs)``.
    """

    model: Any
    task: str  # "classification" or "regression"
    classes: list[Any]
    probabilities: bool
    frame: bool

    def predict(self, data: Any) -> np.ndarray: ...

    def warm(self, data: Any, finite: bool) -> None:
        """Called once at load with the example as model input (e.g. to check a fast path);
        ``finite``: the schema lets no missing value through."""
        ...


class Flavour:
    """Base class of every flavour; the defaults suit a library served from a pickle."""

    name: str = ""  # the manifest's contract for zero-code models of this flavour
    library: str = ""  # the distribution that is the framework, e.g. "xgboost"
    modules: tuple[str, ...] = ()  # top-level modules whose classes this flavour serves
    # Modules that loading and calling its models imports, when not ``modules``: the
    # server's master imports them once before it forks the workers (serving/preload.py).
    runtime: tuple[str, ...] = ()
    # Libraries the model's files need besides ``library`` (recorded, pinned, checked).
    needs: tuple[str, ...] = ()
    # Whether ``to_onnx`` can convert its models for ``shipml build/serve --onnx``.
    onnx_conversion = False
    # Model files a user may hand over as they are (``save_model("model.onnx")``).
    file_suffixes: tuple[str, ...] = ()

    # -- recognising and describing a model ------------------------------------------

    def detect(self, model: Any) -> bool:
        """Whether ``model`` is this flavour's (by module name: nothing is imported)."""
        return any(klass.__module__.split(".")[0] in self.modules for klass in type(model).__mro__)

    def unservable(self, model: Any) -> str | None:
        """Why this flavour's ``model`` cannot answer requests at all (None: it can),
        said at save instead of by a service that never becomes ready."""
        return None

    def feature_names(self, model: Any) -> list[str] | None:
        """The model's input columns when no training data says them."""
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        count = getattr(model, "n_features_in_", None)
        return [f"f{i}" for i in range(count)] if isinstance(count, int) else None

    def fitted_names(self, model: Any) -> list[str] | None:
        """The columns the model checks by name when it predicts, in order: scikit-learn's
        ``feature_names_in_`` (set when it was fitted on a DataFrame), else None."""
        names = getattr(model, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else None

    def feature_types(self, model: Any) -> dict[str, str] | None:
        """Field name → JSON type, when neither training data nor an example says them."""
        names = self.feature_names(model)
        return dict.fromkeys(names, "number") if names else None

    def schema_data(self, model: Any, training_data: Any) -> Any:
        """The part of ``training_data`` a request carries (default: all of it)."""
        return training_data

    def takes_frame(self, model: Any, training_data: Any) -> bool:
        """Whether the model gets a DataFrame (it was fitted on one) or a matrix."""
        return is_frame(training_data)

    def runtime_modules(self) -> tuple[str, ...]:
        return self.runtime or self.modules

    def libraries(self, model: Any) -> list[str]:
        """Distributions whose exact versions the model depends on (besides numpy)."""
        return [self.library, *self.needs]

    # -- files -------------------------------------------------------------------------

    def save(self, model: Any, folder: Path) -> Saved:
        return Saved([dump_pickle(model, folder)], "joblib")

    def read_file(self, path: Path) -> Any:
        """The model in a file with one of ``file_suffixes``."""
        raise NotImplementedError

    def load_model(self, folder: Path, manifest: Manifest) -> Any:
        """The model object from its files (a pickle when the manifest names one)."""
        return load_pickle(model_path(folder, manifest))

    def load(self, folder: Path, manifest: Manifest) -> Loaded:
        model = self.load_model(folder, manifest)
        return self.wrap(model, self.frame_of(model, manifest))

    def frame_of(self, model: Any, manifest: Manifest) -> bool:
        """Whether the loaded model takes a DataFrame, as recorded when it was saved."""
        return bool(manifest.flavour.get("frame", False))

    def wrap(self, model: Any, frame: bool) -> Loaded:
        raise NotImplementedError

    # -- serving -----------------------------------------------------------------------

    def refusal(self, exc: BaseException) -> str | None:
        """The message when ``exc`` (raised by the model's predict) refuses the input."""
        return first_line(exc) if isinstance(exc, INPUT_ERRORS) else None

    def packages(self, manifest: Manifest) -> list[Package]:
        """What a serve image installs for this model, pinned to the trained versions."""
        names = manifest.flavour.get("packages") or [self.library]
        return [Package(name, manifest.libraries.get(name)) for name in names]

    def install(self, package: Package) -> Package:
        """How an image installs this flavour's library (default: with its dependencies)."""
        return package

    def to_onnx(self, model: Any, features: int, name: str) -> Any:
        """An ``onnx.ModelProto`` taking one float32 ``[None, features]`` input."""
        raise NotImplementedError


def is_frame(data: Any) -> bool:
    return hasattr(data, "dtypes") and hasattr(data, "columns") and hasattr(data, "iloc")


def first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def model_file(manifest: Manifest) -> str:
    if not manifest.model_file:
        raise IntegrityError(f"{manifest.ref} names no model file in its manifest")
    return manifest.model_file


def model_path(folder: Path, manifest: Manifest) -> Path:
    """Where the model file sits in ``folder``, through the store's path rule."""

    return inside(folder, model_file(manifest), f"manifest {manifest.ref}")
