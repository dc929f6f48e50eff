"""A model as a pickle and back, with the user's own code inside it.

A pickle names every class and function by module and name, and unpickling imports them
again. That is right for installed libraries (scikit-learn, LightGBM …: the image installs
them, :func:`pickled_libraries` says which), and wrong for the code a data scientist
writes around them: a transformer class defined in the training script or notebook
(module ``__main__``), or in ``features.py`` beside it. Neither is importable where the
model is served, so the model would save without a word and then fail at every load
(``Can't get attribute 'Ratio' on <module '__main__'>``, ``No module named 'features'``).

So a model whose pickle refers to such code is written with cloudpickle (what joblib
itself uses for its worker processes), the user's modules registered *by value*: their
classes and functions travel inside the pickle and the model loads wherever its
libraries are installed. A model without code of its own is written by joblib, as
before. MLflow's scikit-learn flavour pickles with cloudpickle for the same reason.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import pickle
import sys
import sysconfig
import types
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from shipml.errors import ModelDefinitionError
from shipml.store.reference import PICKLE_SUFFIXES

PICKLE_FILE = "model.joblib"
# joblib.dump compresses by these extensions (model.pkl.gz); joblib.load finds it by itself
COMPRESSED_SUFFIXES = (".z", ".gz", ".bz2", ".xz", ".lzma")
# Modules never the user's own: pickled by reference whatever else holds.
NOT_OWN = frozenset({"builtins", "shipml"})
STDLIB = sysconfig.get_paths()["stdlib"]
log = logging.getLogger("shipml")


def dump_pickle(model: Any, folder: Path) -> str:
    """Write ``model`` to ``folder``; the code of the user's own it uses goes inside."""
    referred = own_modules(pickled_modules(model))
    if referred:
        # every module of the user's loaded here goes by value, not only those the walk
        # saw: the code the model refers to may use another (``helpers.clean``), unseen
        _dump_by_value(model, folder / PICKLE_FILE, referred, own_modules(_top_level_loaded()))
    else:
        import joblib  # on use: a worker serving a native-format or ONNX model never loads joblib

        joblib.dump(model, folder / PICKLE_FILE)
    return PICKLE_FILE


def _top_level_loaded() -> set[str]:
    return {name for name in list(sys.modules) if "." not in name}


def _dump_by_value(model: Any, path: Path, referred: list[str], own: list[str]) -> None:
    import cloudpickle  # on use: only a model with code of the user's own needs it

    registered = set(cloudpickle.list_registry_pickle_by_value())
    added = [sys.modules[name] for name in own if name != "__main__" and name not in registered]
    for module in added:
        cloudpickle.register_pickle_by_value(module)
    try:
        with path.open("wb") as out:
            cloudpickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        where = ", ".join("your training script" if n == "__main__" else n for n in referred)
        raise ModelDefinitionError(
            f"the model uses code of your own ({where}), which shipml stores inside the "
            f"model so that it loads where that code is not installed, and that failed: "
            f"{type(exc).__name__}: {exc}. Keep what that code refers to picklable (no open "
            "files, connections or locks at module level), or put the code in a package "
            "installed where the model is served"
        ) from exc
    finally:
        for module in added:
            cloudpickle.unregister_pickle_by_value(module)
    log.info("the model's own code (%s) is stored inside it", ", ".join(referred))


def is_pickle_file(path: Path) -> bool:
    """Whether ``path`` is named as a pickle is: ``model.pkl``, or compressed ``model.pkl.gz``."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] in COMPRESSED_SUFFIXES and suffixes[-2] != ".skops":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in PICKLE_SUFFIXES


def load_pickle(path: Path) -> Any:
    """Unpickle a model file, logging (not raising) the library's version warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if path.suffix == ".skops":
            import skops.io  # type: ignore[import-not-found]

            model = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
        else:
            # on use: a worker serving a native-format or ONNX model never loads joblib
            import joblib

            try:
                model = joblib.load(path)
            except (ModuleNotFoundError, AttributeError) as exc:
                if isinstance(exc, AttributeError) and "Can't get attribute" not in str(exc):
                    raise  # not a name the pickle looked up: the library's own error
                raise ModelDefinitionError(_missing_code(path, exc)) from exc
    for warning in caught:
        log.warning("loading %s: %s", path.name, warning.message)
    return model


def _missing_code(path: Path, exc: BaseException) -> str:
    """What to do about a pickle that names code this process cannot import."""
    if "<module '__main__'" in str(exc):
        where = "a class or function defined in the script or notebook that trained it"
    elif isinstance(exc, ModuleNotFoundError):
        where = f"a module of its own ({exc.name}, beside its training script?) or a library"
    else:  # an installed library's class or function, gone in the version installed here
        return (
            f"{path.name} refers to code that is not importable here ({exc}): install the "
            "versions of its libraries it was saved with (`shipml models show` lists them)"
        )
    return (
        f"{path.name} refers to code that is not importable here ({exc}): {where}. Save "
        "the model again with shipml.save_model, which stores the code of your own inside "
        "the model, or install that code where the model is served"
    )


def own_modules(modules: set[str]) -> list[str]:
    """The top-level modules of ``modules`` that are the user's own: ``__main__``, and
    Python source that no installed distribution provides, outside the installed
    packages and the standard library (a project's ``features.py``)."""
    own = []
    for name in sorted(modules):
        module = sys.modules.get(name)
        if name == "__main__":
            own.append(name)
        elif module is None or name in sys.stdlib_module_names or name in NOT_OWN:
            continue
        elif _user_source(module) and not _owners(name):
            own.append(name)
    return own


def _user_source(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    places = [file] if file else list(getattr(module, "__path__", None) or [])
    if not places or (file and not str(file).endswith(".py")):
        return False  # built in, compiled, or made at run time (Cython's shared types)
    return not any(_library_place(str(place)) for place in places)


def _library_place(path: str) -> bool:
    return _site_packages(path) or path.startswith(STDLIB)


class _ModuleRecorder(pickle.Pickler):
    """Pickles into nothing, noting the module of every object and class on the way."""

    def __init__(self) -> None:
        super().__init__(_Sink(), protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, (type, types.FunctionType)):
            # a class, or a function (a FunctionTransformer's): named, not walked. A lambda
            # or a nested function cannot be named, but is noted all the same: in the
            # user's own code cloudpickle writes it by value
            self._note(getattr(obj, "__module__", None))
            return "named"
        self._note(type(obj).__module__)
        return None

    def _note(self, module: object) -> None:
        if isinstance(module, str):
            self.modules.add(module.split(".")[0])


class _Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def pickled_modules(model: Any) -> set[str]:
    """The top-level modules a pickle of ``model`` would import again (empty when the
    model cannot be pickled at all: saving says so)."""
    recorder = _ModuleRecorder()
    try:
        recorder.dump(model)
    except Exception:
        return set()
    return recorder.modules


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _owners(module: str) -> list[str]:
    """The distributions providing ``module``. Scanning every installed distribution costs
    ~0.7 s, so it is done once per process, and again only for a module it did not know
    (installed since, e.g. in a notebook) and that lives where installed packages do."""
    if module not in _distributions() and _installed(module):
        _distributions.cache_clear()
    return _distributions().get(module, [])


def _installed(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return _site_packages(str(spec.origin or "") if spec else "")


def _site_packages(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path


def pickled_libraries(model: Any) -> list[str]:
    """The installed distributions a pickle of ``model`` refers to, e.g. a LightGBM step
    inside a scikit-learn pipeline: an image without them could not unpickle it."""
    found: list[str] = []
    for module in sorted(pickled_modules(model)):
        if module in sys.stdlib_module_names or module in NOT_OWN or module == "__main__":
            continue
        for distribution in _owners(module):
            name = distribution.lower().replace("_", "-")
            if name not in found:
                found.append(name)
    return found
