"""What the serve master imports before it forks (serving/preload.py): the modules of the
flavour the manifest names, found without loading the model, and nothing that fails."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shipml.serving.preload import model_modules, preload
from shipml.serving.settings import ServeSettings
from shipml.store import Store, parse_reference

# iris_model is a LogisticRegression: its flavour's library and its class's module
IRIS = ("sklearn", "sklearn.linear_model._logistic")


def test_a_store_version_names_its_flavours_modules(iris_model: str, isolated_store: Path) -> None:
    assert model_modules(ServeSettings(model="iris", store=str(isolated_store))) == IRIS
    assert model_modules(ServeSettings(model=iris_model, store=str(isolated_store))) == IRIS


def test_a_baked_folder_is_read_from_its_manifest(
    iris_model: str, isolated_store: Path, tmp_path: Path
) -> None:
    local = Store(str(isolated_store)).fetch(parse_reference(iris_model), tmp_path / "cache")
    assert model_modules(ServeSettings(model_dir=local.folder)) == IRIS


def test_an_onnx_conversion_preloads_the_runtime_not_the_library(
    iris_model: str, isolated_store: Path, tmp_path: Path
) -> None:
    from shipml.flavours import named
    from shipml.scoring.onnx import CONVERSION

    local = Store(str(isolated_store)).fetch(parse_reference(iris_model), tmp_path / "cache")
    (local.folder / CONVERSION).parent.mkdir(parents=True, exist_ok=True)
    (local.folder / CONVERSION).write_text("{}")  # what serve --onnx adds beside the model
    assert model_modules(ServeSettings(model_dir=local.folder)) == ("onnxruntime",)
    flavour = named("onnx")  # a model saved as ONNX in the first place
    assert flavour is not None and flavour.runtime_modules() == ("onnxruntime",)


@pytest.mark.parametrize(
    "settings",
    [
        ServeSettings(model="nothing-here"),  # no such model: the worker says so, not this
        ServeSettings(model_dir=Path("/nonexistent/folder")),
        ServeSettings(model="iris", store="/nonexistent/store"),
        # a remote store is not asked (a dead endpoint would hold the master in retries)
        ServeSettings(model="iris", store="az://nowhere/models"),
    ],
)
def test_what_cannot_be_read_preloads_only_the_server(
    settings: ServeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    assert model_modules(settings) == ()
    with caplog.at_level(logging.INFO, logger="shipml"):
        preload(settings)  # never raises: the worker reports a bad model
    assert "imported shipml.serving.app in" in caplog.text


def test_a_model_file_is_not_opened(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"not a pickle at all")
    assert model_modules(ServeSettings(model=str(path))) == ()


def test_importing_the_server_does_not_load_numpy() -> None:
    """The thread variables are exported after the server module is imported (images run
    ``python -m shipml.serving``) and must be in place when numpy first loads."""
    code = "import sys, shipml.serving.server; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
