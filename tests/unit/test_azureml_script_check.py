"""What a score.py's source says: the packages an image needs, and azureml-core v1's layout."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from shipml.errors import ProjectError
from shipml.image.requirements import image_requirements
from shipml.scoring.azureml.runtime import v1_model_dir
from shipml.scoring.azureml.script_check import check_script, script_packages
from shipml.store.manifest import Manifest

V1 = """
import os
from azureml.core.model import Model

def init():
    global path
    path = Model.get_model_path(os.getenv("AZUREML_MODEL_DIR").split("/")[1])
"""


def script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "score.py"
    path.write_text(text)
    return path


def test_an_image_gets_what_the_script_imports(tmp_path: Path) -> None:
    source = script(
        tmp_path,
        "from inference_schema.schema_decorators import input_schema\n"
        "from azureml.contrib.services.aml_request import rawhttp\n",
    )
    assert script_packages(source) == ["inference-schema", "werkzeug"]
    manifest = Manifest(name="s", version=1, created="", contract="azureml", files={})
    (tmp_path / "requirements.txt").write_text("scikit-learn==1.9.1\ninference_schema==1.8\n")
    lines = image_requirements(manifest, tmp_path / "requirements.txt", source)
    assert "inference_schema==1.8" in lines  # the project's own pin wins
    assert f"werkzeug=={metadata.version('werkzeug')}" in lines
    assert not any(line.startswith("inference-schema") for line in lines)


def test_v1_get_model_path_needs_v1s_layout(tmp_path: Path) -> None:
    source = script(tmp_path, V1)
    with pytest.raises(ProjectError, match=r"line 7 calls Model.get_model_path\(\)"):
        check_script(source, ["model.pkl", "score.py"])
    check_script(source, ["azureml-models/diabetes/1/model.pkl"])  # accepted
    folder = tmp_path / "version"
    (folder / "azureml-models" / "diabetes" / "1").mkdir(parents=True)
    assert v1_model_dir(folder, source) == "azureml-models/diabetes/1"
    (folder / "azureml-models" / "scaler" / "2").mkdir(parents=True)
    assert v1_model_dir(folder, source) == "azureml-models"  # several models, as v1 did
    plain = script(tmp_path / "version", "def init(): pass\ndef run(d): return d\n")
    assert v1_model_dir(folder, plain) is None
    check_script(plain, [])
