"""``shipml serve model.joblib``: a bare model file through the real command and its
forked workers (which fields take ``null`` is tested in process in tests/unit/test_nulls.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from tests.conftest import launch, stop_all
from tests.flavour_support import probabilities
from tests.unit.test_nulls import NAMES, X, Y


def test_shipml_serve_of_a_bare_file_takes_null_in_its_workers(tmp_path: Path) -> None:
    """The real command, two forked workers: the master only checks the file (no model
    call before the fork, where OpenMP's threads would start); each worker probes it."""
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, Y)
    path = tmp_path / "hgb.joblib"
    joblib.dump(model, path)
    server = launch((str(path), "--workers", "2"), tmp_path)
    try:
        server.wait_ready(120)
        rows = [[0.5, None, -1.0], [None, None, None]]
        answers = [
            httpx.post(
                f"{server.url}/predict", json=dict(zip(NAMES, row, strict=True)), timeout=30
            ).json()
            for row in rows
        ]
    finally:
        stop_all([server])
    expected = model.predict_proba(np.array(rows, dtype=float))
    np.testing.assert_allclose(probabilities(answers, [0, 1]), expected, rtol=1e-12)
