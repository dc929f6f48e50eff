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
