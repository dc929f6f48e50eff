"""How far live values are from training values: one number to rank by, one test to trust.

For every feature the report computes the **population stability index** (PSI) between
the training sample and the live values, and a significance test:

- numbers: PSI over the ten deciles of the training values (the outer bins open-ended,
  so live values beyond the training range land in the first or last bin), and the
  two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``);
- categories: PSI over the training categories plus one bin for missing values and one
  for values never seen in training, and the chi-square test of the two count tables
  (``scipy.stats.chi2_contingency``).

PSI = sum over bins of (live share - training share) * ln(live share / training share),
each share floored at ``EPSILON`` so an empty bin does not make it infinite. The usual reading, kept
here: below 0.1 no real change, 0.1 to 0.2 a change to watch, **0.2 and above drift**
(``DRIFT``). For a normal feature, a mean shift of 0.45 standard deviations gives a PSI of
about 0.2, one standard deviation about 0.9. The test says whether a difference is more
than chance (``P_VALUE``); with thousands of live records tiny differences are
"significant", so features are flagged and ranked by PSI, and the p-value is shown beside.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINS = 10
EPSILON = 1e-4
WATCH = 0.1
DRIFT = 0.2
P_VALUE = 0.01
MIN_LIVE = 30  # fewer live values: too few to judge (shown, not flagged)
UNSEEN = "(unseen)"
MISSING = "(missing)"


@dataclass
class Drift:
    """The comparison of one feature: its PSI, its test and the two histograms."""

    psi: float
    test: str  # "ks" or "chi-square"
    statistic: float
    p_value: float
    labels: list[str]  # bin labels
    training: list[float]  # share of training values per bin
    live: list[float]  # share of live values per bin
    counts: tuple[int, int] = (0, 0)  # values compared: training, live
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str:
        if self.counts[1] < MIN_LIVE:
            return "too few"
        if self.psi >= DRIFT:
            return "drift"
        return "watch" if self.psi >= WATCH else "stable"

    def to_json(self) -> dict[str, Any]:
        return {
            "psi": self.psi,
            "level": self.level,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "training_values": self.counts[0],
            "live_values": self.counts[1],
            "bins": self.labels,
            "training_share": self.training,
            "live_share": self.live,
            **self.extra,
        }


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """PSI of two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.maximum(e / max(e.sum(), 1e-300), EPSILON)
    a = np.maximum(a / max(a.sum(), 1e-300), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_edges(training: np.ndarray) -> np.ndarray:
    """Inner bin edges: the training deciles, repeated values merged."""
    inner = np.quantile(training, np.linspace(0, 1, BINS + 1)[1:-1])
    return np.unique(inner)


def numeric(training: Sequence[float], live: Sequence[float]) -> Drift:
    """Numbers: PSI over training deciles and the Kolmogorov-Smirnov test."""
    from scipy import stats  # on use: the monitor extra

    ref = np.asarray(training, dtype=np.float64)
    now = np.asarray(live, dtype=np.float64)
    ref, now = ref[np.isfinite(ref)], now[np.isfinite(now)]
    if len(ref) == 0 or len(now) == 0:
        return Drift(0.0, "ks", 0.0, 1.0, [], [], [], (len(ref), len(now)))
    edges = decile_edges(ref)
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    now_counts = np.bincount(np.searchsorted(edges, now, side="right"), minlength=len(edges) + 1)
    result = stats.ks_2samp(ref, now)
    bounds = [float(ref.min()), *edges.tolist(), float(ref.max())]
    labels = [f"[{_short(lo)}, {_short(hi)})" for lo, hi in itertools.pairwise(bounds)]
    if len(bounds) > 2:
        labels[0], labels[-1] = f"< {_short(bounds[1])}", f">= {_short(bounds[-2])}"
    return Drift(
        psi=psi(ref_counts, now_counts),
        test="ks",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        labels=labels,
        training=_shares(ref_counts),
        live=_shares(now_counts),
        counts=(len(ref), len(now)),
        extra={
            "training_mean": float(ref.mean()),
            "live_mean": float(now.mean()),
            "training_std": float(ref.std()),
            "live_std": float(now.std()),
            "histogram": histogram(ref, now),
        },
    )


def categorical(training: Sequence[Any], live: Sequence[Any], known: Sequence[Any] = ()) -> Drift:
    """Categories: PSI over the training categories (+ unseen) and the chi-square test."""
    from scipy import stats  # on use: the monitor extra

    ref_counts = Counter(_key(v) for v in training)
    categories = list(dict.fromkeys([_key(v) for v in known] + list(ref_counts)))
    if MISSING not in categories:
        categories.append(MISSING)  # a category of its own, never "unseen"
    seen = set(categories)
    now_counts = Counter(v if v in seen else UNSEEN for v in (_key(v) for v in live))
    labels = [c for c in categories if c != MISSING or ref_counts.get(c) or now_counts.get(c)]
    labels += [UNSEEN] if now_counts.get(UNSEEN) else []
    ref_vector = np.array([ref_counts.get(c, 0) for c in labels], dtype=np.float64)
    now_vector = np.array([now_counts.get(c, 0) for c in labels], dtype=np.float64)
    statistic, p_value = 0.0, 1.0
    table = np.vstack([ref_vector, now_vector])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1 and ref_vector.sum() and now_vector.sum():
        result = stats.chi2_contingency(table)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return Drift(
        psi=psi(ref_vector, now_vector) if ref_vector.sum() and now_vector.sum() else 0.0,
        test="chi-square",
        statistic=statistic,
        p_value=p_value,
        labels=[str(c) for c in labels],
        training=_shares(ref_vector),
        live=_shares(now_vector),
        counts=(int(ref_vector.sum()), int(now_vector.sum())),
        extra={"unseen_share": float(now_counts.get(UNSEEN, 0) / max(now_vector.sum(), 1))},
    )


def _key(value: Any) -> Any:
    return value if isinstance(value, str | bool | int | float) else str(value)


def _shares(counts: Any) -> list[float]:
    total = float(np.sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _short(value: float) -> str:
    return f"{value:.3g}"


def histogram(training: np.ndarray, live: np.ndarray, bins: int = 24) -> dict[str, Any]:
    """Equal-width histograms of both on one scale (the 0.5th to 99.5th percentile of the
    two together, so one outlier does not squash the plot), as shares."""
    both = np.concatenate([training, live])
    low, high = (float(v) for v in np.quantile(both, [0.005, 0.995]))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    if np.all(np.mod(both, 1) == 0) and high - low < 10 * bins:  # whole numbers: one
        step = int(np.ceil((high - low + 1) / bins))  # bar per value (or per few values)
        edges = np.arange(low - 0.5, high + step, step)
    else:
        edges = np.linspace(low, high, bins + 1)
    shares = [
        (np.histogram(np.clip(values, low, high), edges)[0] / max(len(values), 1)).tolist()
        for values in (training, live)
    ]
    return {"edges": edges.tolist(), "training": shares[0], "live": shares[1]}
