"""scikit-learn's frame checks answered at once for plain arrays: only for exact arrays,
only where scikit-learn itself answers so. Whole models' answers are compared in
tests/integration/test_sklearn_checks_differential.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.utils import validation

from shipml.flavours import sklearn_checks


def test_not_installed_where_scikit_learn_answers_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # e.g. a narwhals plugin that takes numpy arrays for frames: the shortcut would lie
    monkeypatch.setattr(sklearn_checks, "_installed", False)
    monkeypatch.setattr(validation, "_nw_into_df_or_series", lambda x: True)
    assert sklearn_checks.install() is False
    monkeypatch.delattr(validation, "_nw_into_df_or_series")
    assert sklearn_checks.install() is False  # a scikit-learn without the function


def test_only_exact_arrays_take_the_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    monkeypatch.setattr(sklearn_checks, "_installed", False)
    monkeypatch.setattr(validation, "_get_feature_names", asked.append)
    monkeypatch.setattr(validation, "_nw_into_df_or_series", lambda x: bool(asked.append(x)))
    assert sklearn_checks.install() is True
    asked.clear()
    validation._get_feature_names(np.zeros((2, 2)))
    validation._nw_into_df_or_series(np.zeros(3))
    assert asked == []
    masked, listed = np.ma.masked_array(np.zeros((1, 2))), [[1.0, 2.0]]
    validation._get_feature_names(masked)
    validation._nw_into_df_or_series(listed)
    assert asked == [masked, listed]


class Equal:
    """Every instance equals every other, as an estimator comparing its params might."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_answers_are_kept_per_object_by_identity_and_dropped_with_it() -> None:
    kept = sklearn_checks.PerObject()
    first, second = Equal(), Equal()
    assert kept.keep(first, "tags of first") == "tags of first"
    assert kept.get(first) == "tags of first"
    assert kept.get(second) is None  # equal, but another object
    del first
    assert kept._kept == {}  # collected: its answer went with it
    assert kept.keep(1.5, "no weak reference") == "no weak reference"
    assert kept.get(1.5) is None  # a type without weak references is never kept


def test_an_estimator_found_unfitted_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([False, False, True])
    asked: list[Any] = []

    def is_fitted(estimator: Any, attributes: Any = None, all_or_any: Any = all) -> bool:
        asked.append(estimator)
        return next(answers)

    monkeypatch.setattr(validation, "_is_fitted", is_fitted)
    monkeypatch.setattr(validation, "get_tags", lambda estimator: object())
    sklearn_checks._remember_per_estimator(validation)
    model = Equal()
    assert [validation._is_fitted(model) for _ in range(5)] == [False, False, True, True, True]
    assert len(asked) == 3  # once fitted, never asked again
    assert validation.get_tags(model) is validation.get_tags(model)
