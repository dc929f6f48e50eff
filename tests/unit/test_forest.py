"""Forests skip scikit-learn's per-call machinery, with the very same answers."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

import shipml
import shipml.flavours.sklearn as sklearn_flavour
from shipml.flavours.sklearn_forest import forest_proba
from shipml.scoring import load_scorer
from shipml.store import Store, parse_reference

X, Y = load_digits(return_X_y=True)
NAMES = [f"p{i}" for i in range(X.shape[1])]


def scorer_for(model: Any) -> Any:
    model.fit(X[:600], Y[:600])
    ref = shipml.save_model(model, training_data=X[:600], feature_names=NAMES, name="forest")
    return load_scorer(Store().fetch(parse_reference(ref)))


@pytest.mark.parametrize(
    "model",
    [RandomForestClassifier(n_estimators=20, random_state=0), ExtraTreesClassifier(20)],
    ids=["random-forest", "extra-trees"],
)
def test_the_fast_path_answers_exactly_as_scikit_learn(model: Any) -> None:
    scorer = scorer_for(model)
    assert scorer.loaded._fast is not None
    rows = X[600:900]
    answers = scorer.predict(rows)
    expected = model.predict_proba(rows)
    assert [a["probabilities"] for a in answers] == [
        dict(zip(scorer._keys, row, strict=True)) for row in expected.tolist()
    ]
    assert [a["label"] for a in answers] == model.classes_[expected.argmax(axis=1)].tolist()


def test_only_plain_single_output_forest_classifiers_take_it() -> None:
    class Tweaked(RandomForestClassifier):
        pass

    assert forest_proba(Tweaked(n_estimators=3).fit(X[:100], Y[:100])) is None
    two_outputs = np.column_stack([Y[:100], Y[:100] % 2])
    assert forest_proba(RandomForestClassifier(3).fit(X[:100], two_outputs)) is None
    assert forest_proba(RandomForestClassifier(3)) is None  # not fitted: no trees


def test_a_fast_path_that_disagrees_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def off_by_a_bit(model: Any) -> Any:
        real = forest_proba(model)
        assert real is not None
        return lambda data: real(data) + 1e-12

    monkeypatch.setattr(sklearn_flavour, "forest_proba", off_by_a_bit)
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    with caplog.at_level(logging.WARNING, logger="shipml"):
        scorer = scorer_for(model)
    assert scorer.loaded._fast is None
    assert "disagrees with scikit-learn" in caplog.text
    answer = scorer.predict(X[:1])[0]
    assert list(answer["probabilities"].values()) == model.predict_proba(X[:1])[0].tolist()
