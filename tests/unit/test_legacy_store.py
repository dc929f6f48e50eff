"""Versions written before flavours (contract "sklearn", model.joblib) load and answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest

from shipml.flavours import image_packages, strict_libraries
from shipml.image.requirements import image_requirements
from shipml.scoring import load_scorer
from shipml.scoring.model import ModelScorer
from shipml.store import Store, parse_reference

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-store"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture
def legacy(tmp_path: Path) -> Store:
    shutil.copytree(LEGACY, tmp_path / "legacy", ignore=shutil.ignore_patterns("README.md"))
    return Store(str(tmp_path / "legacy"))


@pytest.mark.parametrize("name", ["legacy-iris", "legacy-frame"])
def test_a_legacy_version_answers_like_its_pickle(legacy: Store, name: str) -> None:
    local = legacy.fetch(parse_reference(f"{name}:1"))
    assert local.manifest.contract == "sklearn" and not local.manifest.flavour
    scorer = load_scorer(local)
    assert isinstance(scorer, ModelScorer) and scorer.contract == "sklearn"
    model = joblib.load(local.folder / "model.joblib")
    names = list(scorer.schema.names)
    records = [dict(zip(names, row, strict=True)) for row in ROWS]
    answers = scorer.predict(scorer.prepare(records, b"").data)
    data: object = np.array(ROWS)
    if hasattr(model, "feature_names_in_"):
        import pandas as pd

        data = pd.DataFrame(ROWS, columns=names)
    expected = model.predict_proba(data)
    assert [list(a["probabilities"].values()) for a in answers] == expected.tolist()
    assert [a["label"] for a in answers] == model.classes_[expected.argmax(axis=1)].tolist()


def test_a_legacy_version_keeps_its_image_pins_and_checks(legacy: Store) -> None:
    manifest = legacy.fetch(parse_reference("legacy-iris:1")).manifest
    assert [p.name for p in image_packages(manifest)] == ["scikit-learn"]
    assert "scikit-learn==1.9.1" in image_requirements(manifest, None)
    assert strict_libraries(manifest) == ["scikit-learn"]
