"""Drift statistics against scipy on generated data, at the documented thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shipml.monitoring import drift, text

TRAINING_ROWS = 500  # what save_model keeps
LIVE_ROWS = 2000


def normal(shift: float, size: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return stats.norm.rvs(loc=shift, scale=scale, size=size, random_state=seed)


def expected_psi(shift: float, scale: float = 1.0) -> float:
    """The PSI of N(shift, scale) against N(0, 1) over N(0, 1)'s deciles, from scipy's cdf."""
    edges = stats.norm.ppf(np.linspace(0, 1, 11)[1:-1])
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    training = np.diff(stats.norm.cdf(bounds))
    live = np.diff(stats.norm.cdf(bounds, loc=shift, scale=scale))
    return float(np.sum((live - training) * np.log(live / training)))


@pytest.mark.parametrize(
    ("shift", "scale"), [(0.0, 1.0), (0.3, 1.0), (0.6, 1.0), (1.0, 1.0), (0.0, 2.0)]
)
def test_psi_matches_the_value_computed_from_scipy_distributions(
    shift: float, scale: float
) -> None:
    result = drift.numeric(normal(0, 40_000, 1), normal(shift, 40_000, 2, scale))
    assert result.psi == pytest.approx(expected_psi(shift, scale), abs=0.01)


def test_documented_reading_of_a_mean_shift() -> None:
    # docs/monitoring.md: a shift of 0.45 standard deviations is about the drift threshold,
    # one standard deviation about 0.9
    assert expected_psi(0.45) == pytest.approx(drift.DRIFT, abs=0.01)
    assert expected_psi(1.0) == pytest.approx(0.9, abs=0.05)


def test_shifted_features_are_flagged_and_unshifted_ones_are_not() -> None:
    for seed in range(20):
        training = normal(0, TRAINING_ROWS, seed)
        same = drift.numeric(training, normal(0, LIVE_ROWS, 100 + seed))
        assert same.psi < drift.DRIFT and same.level != "drift", (seed, same.psi)
        moved = drift.numeric(training, normal(0.75, LIVE_ROWS, 200 + seed))
        assert moved.level == "drift" and moved.p_value < drift.P_VALUE, (seed, moved.psi)
        wider = drift.numeric(training, normal(0, LIVE_ROWS, 300 + seed, scale=2.0))
        assert wider.level == "drift", (seed, wider.psi)


def test_the_test_is_scipys_two_sample_ks() -> None:
    training, live = normal(0, TRAINING_ROWS, 5), normal(0.2, LIVE_ROWS, 6)
    result = drift.numeric(training, live)
    reference = stats.ks_2samp(training, live)
    assert result.test == "ks"
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_out_of_range_values_land_in_the_open_outer_bins() -> None:
    training = normal(0, TRAINING_ROWS, 7)
    result = drift.numeric(training, np.full(LIVE_ROWS, 50.0))  # all far above training
    assert result.live[-1] == pytest.approx(1.0)
    assert result.level == "drift"


def categories(shares: list[float], size: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return list(rng.choice(["red", "green", "blue"], size=size, p=shares))


def test_categories_chi_square_is_scipys_and_a_shift_is_flagged() -> None:
    for seed in range(10):
        training = categories([0.5, 0.3, 0.2], TRAINING_ROWS, seed)
        same = drift.categorical(training, categories([0.5, 0.3, 0.2], LIVE_ROWS, 50 + seed))
        assert same.level == "stable", (seed, same.psi)
        moved = drift.categorical(training, categories([0.2, 0.3, 0.5], LIVE_ROWS, 80 + seed))
        assert moved.level == "drift" and moved.p_value < drift.P_VALUE
    live = categories([0.2, 0.3, 0.5], LIVE_ROWS, 89)
    colours = ("red", "green", "blue")
    table = np.array([[training.count(c) for c in colours], [live.count(c) for c in colours]])
    reference = stats.chi2_contingency(table)
    assert moved.test == "chi-square"
    assert moved.statistic == pytest.approx(reference.statistic)
    assert moved.p_value == pytest.approx(reference.pvalue)


def test_categories_never_seen_in_training_get_their_own_bin() -> None:
    training = ["a"] * 50 + ["b"] * 50
    result = drift.categorical(training, ["a"] * 40 + ["b"] * 40 + ["zzz"] * 20, known=["a", "b"])
    assert result.labels[-1] == drift.UNSEEN
    assert result.extra["unseen_share"] == pytest.approx(0.2)
    assert result.level == "drift"


def test_too_few_live_values_are_shown_but_not_flagged() -> None:
    result = drift.numeric(normal(0, TRAINING_ROWS, 1), normal(3, drift.MIN_LIVE - 1, 2))
    assert result.psi > drift.DRIFT
    assert result.level == "too few"


def test_text_features_length_words_and_unseen_share() -> None:
    vocabulary = frozenset(text.vocabulary(["the cat sat", "The dog ran fast"]))
    assert text.features("The cat flew", vocabulary) == (12.0, 3.0, pytest.approx(1 / 3))
    assert text.features("", vocabulary) == (0.0, 0.0, 0.0)
    assert text.looks_like_text([f"a review number {i} of words" for i in range(60)], 60)
    assert not text.looks_like_text(["red", "blue"] * 30, 2)
