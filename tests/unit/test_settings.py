"""Serving settings: defaults < shipml.yaml < SHIPML_* variables < flags; bad values named."""

from __future__ import annotations

import pytest

from shipml.errors import ProjectError
from shipml.serving.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPML_BATCHING", "SHIPML_WORKERS", "SHIPML_MAX_LATENCY_MS", "SHIPML_API_KEYS"):
        monkeypatch.delenv(name, raising=False)


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().batching is True
    assert load_settings({"workers": 3}).workers == 3
    monkeypatch.setenv("SHIPML_WORKERS", "4")
    assert load_settings({"workers": 3}).workers == 4
    assert load_settings({"workers": 3}, workers=5).workers == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", False), ("false", False), ("OFF", False), ("no", False), ("1", True), (" yes ", True)],
)
def test_switches_read_the_usual_words(
    raw: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPML_BATCHING", raw)
    assert load_settings().batching is expected


def test_a_misspelt_switch_is_an_error_not_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPML_BATCHING", "flase")
    with pytest.raises(ProjectError, match=r"SHIPML_BATCHING must be true or false, got 'flase'"):
        load_settings()


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProjectError, match=r"serve\.bogus.*the keys are: host, port"):
        load_settings({"bogus": 1})
    with pytest.raises(ProjectError, match="max_batch_size .*at least 1, got 0"):
        load_settings({"max_batch_size": 0})
    monkeypatch.setenv("SHIPML_MAX_LATENCY_MS", "soon")
    with pytest.raises(ProjectError, match="SHIPML_MAX_LATENCY_MS must be a number, got 'soon'"):
        load_settings()


def test_monitoring_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().monitor is False
    project = {"monitor": True, "monitor_redact": ["email", "name"], "monitor_sample_rate": 0.5}
    settings = load_settings(project)
    assert settings.monitor is True and settings.monitor_redact == ("email", "name")
    monkeypatch.setenv("SHIPML_MONITOR_HASH", "customer_id, account")
    monkeypatch.setenv("SHIPML_MONITOR_SAMPLE_RATE", "0.25")
    settings = load_settings(project)
    assert settings.monitor_hash == ("customer_id", "account")
    assert settings.monitor_sample_rate == 0.25
    monkeypatch.setenv("SHIPML_MONITOR", "yes please")
    with pytest.raises(ProjectError, match="SHIPML_MONITOR must be true or false"):
        load_settings()


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.1"])
def test_a_sample_rate_outside_zero_to_one_is_refused(
    rate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPML_MONITOR_SAMPLE_RATE", rate)
    with pytest.raises(ProjectError, match="SHIPML_MONITOR_SAMPLE_RATE"):
        load_settings()


def test_a_monitor_section_in_shipml_yaml() -> None:
    section = {"monitor": {"sample_rate": 1, "redact": ["email"], "hash": ["customer_id"]}}
    settings = load_settings(section)
    assert settings.monitor is True and settings.monitor_sample_rate == 1.0
    assert settings.monitor_redact == ("email",) and settings.monitor_hash == ("customer_id",)
    assert load_settings({"monitor": {"enabled": False, "interval": 5}}).monitor is False
    with pytest.raises(ProjectError, match=r"'serve.monitor.redcat' is not known.*redact"):
        load_settings({"monitor": {"redcat": ["email"]}})
