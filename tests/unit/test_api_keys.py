"""API keys come from the environment or a mounted file; an unfilled template is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipml.errors import ProjectError
from shipml.serving.settings import read_api_keys


def test_keys_from_variable_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "keys"
    secret.write_text("from-file\n\n  second  \n")
    monkeypatch.setenv("SHIPML_API_KEYS", "a, b,,")
    monkeypatch.setenv("SHIPML_API_KEYS_FILE", str(secret))
    assert read_api_keys() == ("a", "b", "from-file", "second")


@pytest.mark.parametrize("placeholder", ["${SHIPML_API_KEYS}", "$(cat /run/key)", "<your-key>"])
def test_an_unfilled_placeholder_is_refused(
    placeholder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPML_API_KEYS", f"real-key,{placeholder}")
    with pytest.raises(ProjectError, match="unfilled placeholder"):
        read_api_keys()


def test_the_service_will_not_start_with_a_placeholder_key(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SHIPML_API_KEYS": "${SHIPML_API_KEYS}",
        "SHIPML_MODEL_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "shipml.serving"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "unfilled placeholder '${SHIPML_API_KEYS}'" in result.stderr
    assert "Traceback" not in result.stderr
