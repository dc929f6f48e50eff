"""What an image installs: environment files, conda mapping, framework pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipml.errors import ProjectError
from shipml.image.requirements import (
    conda_requirements,
    environment_requirements,
    image_requirements,
    package_name,
)
from shipml.store import Manifest


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_conda_environment_maps_to_wheels(tmp_path: Path) -> None:
    env = write(
        tmp_path,
        "environment.yml",
        """
name: model
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - numpy=1.26
  - conda-forge::scikit-learn==1.9.1=py311h_0
  - scipy>=1.10
  - pytorch=2.3
  - pip:
    - orjson==3.10.0
""",
    )
    assert conda_requirements(env) == [
        "numpy==1.26.*",
        "scikit-learn==1.9.1",
        "scipy>=1.10",
        "torch==2.3.*",
        "orjson==3.10.0",
    ]


def test_conda_only_packages_are_named_with_the_way_out(tmp_path: Path) -> None:
    env = write(
        tmp_path, "environment.yml", "dependencies:\n  - mkl\n  - numpy\n  - cudatoolkit=11\n"
    )
    with pytest.raises(
        ProjectError, match=r"only conda provides: mkl, cudatoolkit\. .*requirements\.txt"
    ):
        conda_requirements(env)


def test_conda_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="'dependencies' must be a list"):
        conda_requirements(write(tmp_path, "e.yml", "name: x\n"))


def test_requirements_txt_skips_comments_and_options(tmp_path: Path) -> None:
    req = write(
        tmp_path,
        "requirements.txt",
        "# pinned\nscikit-learn==1.9.1  # model\n--extra-index-url x\n\n",
    )
    assert environment_requirements(req) == ["scikit-learn==1.9.1"]


def test_framework_is_pinned_unless_the_project_pins_it(tmp_path: Path) -> None:
    manifest = Manifest(
        name="m",
        version=1,
        created="",
        contract="sklearn",
        files={},
        framework={"name": "scikit-learn"},
        libraries={"scikit-learn": "1.9.1"},
    )
    pins = image_requirements(manifest, None)
    assert "scikit-learn==1.9.1" in pins and any(p.startswith("orjson==") for p in pins)
    own = image_requirements(manifest, write(tmp_path, "requirements.txt", "Scikit_Learn>=1.9\n"))
    assert [p for p in own if package_name(p) == "scikit-learn"] == ["Scikit_Learn>=1.9"]
