"""The user's own code inside a model's pickle (flavours/pickling.py); the whole path, from
a training script run as ``__main__`` to a service elsewhere, is in
tests/integration/test_own_code.py."""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import shipml
from shipml.errors import ModelDefinitionError
from shipml.flavours.pickling import (
    dump_pickle,
    is_pickle_file,
    load_pickle,
    own_modules,
    pickled_modules,
)
from shipml.store import Store

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])


@pytest.fixture
def module_of_mine(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A module of the user's own, imported from a folder no distribution installed."""
    (tmp_path / "mine_features.py").write_text(
        "import threading\n"
        "import numpy as np\n"
        "LOCK = threading.Lock()\n"
        "def doubled(x):\n"
        "    return np.asarray(x) * 2.0\n"
        "def locked(x):\n"
        "    with LOCK:\n"
        "        return np.asarray(x)\n"
    )
    sys.path.insert(0, str(tmp_path))
    import mine_features  # type: ignore[import-not-found]

    yield mine_features
    sys.path.remove(str(tmp_path))
    sys.modules.pop("mine_features", None)


def test_own_modules_are_the_main_script_and_what_no_distribution_installed(
    module_of_mine: types.ModuleType,
) -> None:
    modules = {"__main__", "mine_features", "numpy", "sklearn", "json", "builtins", "shipml"}
    assert own_modules(modules) == ["__main__", "mine_features"]
    model = make_pipeline(FunctionTransformer(module_of_mine.doubled), LinearRegression())
    assert {"mine_features", "sklearn", "numpy"} <= pickled_modules(model.fit(X, X.sum(axis=1)))


def test_a_model_without_code_of_its_own_is_written_by_joblib(tmp_path: Path) -> None:
    model = LinearRegression().fit(X, X.sum(axis=1))
    name = dump_pickle(model, tmp_path)
    assert b"cloudpickle" not in (tmp_path / name).read_bytes()
    assert load_pickle(tmp_path / name).coef_.tolist() == model.coef_.tolist()


def test_own_code_goes_inside_and_the_registry_is_left_as_it_was(
    module_of_mine: types.ModuleType, tmp_path: Path
) -> None:
    before = list(cloudpickle.list_registry_pickle_by_value())
    model = make_pipeline(FunctionTransformer(module_of_mine.doubled), LinearRegression())
    model.fit(X, X.sum(axis=1))
    name = dump_pickle(model, tmp_path)
    assert list(cloudpickle.list_registry_pickle_by_value()) == before
    assert b"mine_features" in (tmp_path / name).read_bytes()
    sys.modules.pop("mine_features")  # as where the model is served
    loaded = load_pickle(tmp_path / name)
    assert loaded.predict(X).tolist() == pytest.approx(model.predict(X).tolist())
    assert "mine_features" not in sys.modules


def test_own_code_that_cannot_be_pickled_is_refused_at_save_and_nothing_is_stored(
    module_of_mine: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPML_STORE", str(tmp_path / "store"))
    model = make_pipeline(FunctionTransformer(module_of_mine.locked), LinearRegression())
    model.fit(X, X.sum(axis=1))
    with pytest.raises(ModelDefinitionError) as refused:
        shipml.save_model(model, training_data=X, feature_names=["a", "b"], name="locked")
    assert "mine_features" in str(refused.value) and "lock" in str(refused.value)
    assert Store(str(tmp_path / "store")).models() == []


class Scaled:  # pickled below as if the training script had defined it
    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows).sum(axis=1)


def pickled_as_if_in(module: str, path: Path) -> None:
    """Write ``Scaled()`` with joblib as if ``module`` had defined the class."""
    host = sys.modules.get(module) or types.ModuleType(module)
    sys.modules[module], Scaled.__module__ = host, module
    host.Scaled = Scaled  # type: ignore[attr-defined]
    try:
        joblib.dump(Scaled(), path)
    finally:
        del host.Scaled  # type: ignore[attr-defined]
        Scaled.__module__ = __name__
        if module != "__main__":
            del sys.modules[module]


def test_an_old_pickle_of_a_scripts_class_says_what_to_do(tmp_path: Path) -> None:
    pickled_as_if_in("__main__", tmp_path / "model.joblib")
    with pytest.raises(ModelDefinitionError) as failed:
        load_pickle(tmp_path / "model.joblib")
    assert "defined in the script or notebook that trained it" in str(failed.value)
    assert "Save the model again with shipml.save_model" in str(failed.value)
    pickled_as_if_in("features_gone", tmp_path / "gone.pkl")
    with pytest.raises(ModelDefinitionError, match="a module of its own .features_gone"):
        load_pickle(tmp_path / "gone.pkl")


@pytest.mark.parametrize(
    "name", ["finalized_model.sav", "model.pkl.gz", "model.joblib.xz", "m.pickle.bz2", "m.PKL"]
)
def test_pickles_as_tutorials_and_joblib_name_them_are_model_files(
    tmp_path: Path, name: str
) -> None:
    from shipml.scoring.loader import open_model_file
    from shipml.serving.metrics import Metrics
    from shipml.serving.service import Service

    model = LinearRegression().fit(X, X.sum(axis=1))
    path = tmp_path / name
    if name.endswith(".sav"):  # pickle.dump(model, open("finalized_model.sav", "wb"))
        path.write_bytes(pickle.dumps(model))
    else:
        joblib.dump(model, path)  # compressed by its extension
    service = Service(lambda: open_model_file(path), Metrics())
    service.load_now()
    assert service.scorer is not None
    answers = service.scorer.predict(X)  # type: ignore[attr-defined]
    assert answers == [{"prediction": value} for value in model.predict(X).tolist()]


@pytest.mark.parametrize("name", ["model.gz", "notes.txt.gz", "model.skops.gz", "model"])
def test_other_names_are_not_taken_for_pickles(name: str) -> None:
    assert not is_pickle_file(Path(name))
