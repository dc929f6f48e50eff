"""The OpenAPI document matches the service: schemathesis, every check, a fixed seed and a
bounded number of examples, on three models (tests/fuzz.py; `make fuzz` runs longer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import QUICK_PHASES, run_all

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    outcomes = run_all(examples=20, seed=14, phases=QUICK_PHASES, folder=tmp_path)
    failed = [outcome for outcome in outcomes if not outcome.passed]
    assert not failed, "\n\n".join(f"== {o.model}\n{o.report[-6000:]}" for o in failed)
    for outcome in outcomes:  # every operation was tried
        assert "No issues found" in outcome.report, outcome.report[-3000:]
