"""Project templates for ``shipml init``: the examples, shipped inside the package."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from shipml.errors import ProjectError

TEMPLATES = ("iris", "sentiment", "blank")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".shipml", "*.joblib")

BLANK = {
    "shipml.yaml": "name: {name}\ntrain: train.py\nenvironment: requirements.txt\n",
    "requirements.txt": "scikit-learn\n",
    "train.py": '''"""Train the model and hand it to shipml.

Run it with `shipml train`: the model is published as the next version of '{name}'.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression

import shipml

FEATURES = ["x1", "x2"]
X = np.array([[0.0, 0.1], [0.2, 0.0], [0.9, 1.0], [1.0, 0.8]])
y = np.array(["low", "low", "high", "high"])

model = LogisticRegression().fit(X, y)
shipml.save_model(model, training_data=X, feature_names=FEATURES,
                  metrics={{"train_accuracy": model.score(X, y)}})
''',
}


def _source(template: str) -> Path | None:
    packaged = resources.files("shipml") / "templates" / template
    if packaged.is_dir():
        return Path(str(packaged))
    in_repo = Path(__file__).resolve().parents[2] / "examples" / template  # a source checkout
    return in_repo if in_repo.is_dir() else None


def create_project(target: Path, template: str) -> list[str]:
    """Write a new project into ``target`` (which must be empty); returns the files."""
    if template not in TEMPLATES:
        raise ProjectError(f"unknown template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    if target.exists() and any(target.iterdir()):
        raise ProjectError(f"{target} is not empty; pick a new folder for the project")
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in target.name.lower()) or "model"
    if template == "blank":
        target.mkdir(parents=True, exist_ok=True)
        for file, text in BLANK.items():
            (target / file).write_text(text.format(name=name))
    else:
        source = _source(template)
        if source is None:
            raise ProjectError(f"the {template} template is missing from this installation")
        shutil.copytree(source, target, ignore=IGNORE, dirs_exist_ok=True)
    return sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
