"""The Grafana dashboard that ships with shipml: well-formed, and every query names a
metric a monitored service really exposes."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from typer.testing import CliRunner

from shipml.cli import app
from shipml.monitoring.live import LiveSignals
from shipml.serving.metrics import Metrics

DASHBOARD = json.loads(
    (resources.files("shipml.monitoring") / "grafana-dashboard.json").read_text()
)
METRIC = re.compile(r"\bshipml_[a-z_]+")
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def exposed() -> set[str]:
    """Every sample name of a service with monitoring on (a regressor's too)."""
    metrics = Metrics()
    profile = {"outputs": {"prediction": {"edges": [0.0, 1.0, 2.0]}}}
    LiveSignals(metrics.registry, profile, ("x",), None)
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names |= {family.name + suffix for suffix in ("_total", "_bucket", "_count", "_sum")}
    return names


def targets() -> list[dict[str, Any]]:
    return [t for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_well_formed() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"] and isinstance(DASHBOARD["schemaVersion"], int)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))


def test_every_query_names_a_metric_the_service_exposes() -> None:
    names = exposed()
    used = {name for t in targets() for name in METRIC.findall(t["expr"])}
    assert used, "no query"
    assert used <= names, sorted(used - names)
    # every live signal of docs/monitoring.md is on the dashboard
    for wanted in (
        "shipml_predictions_total",
        "shipml_prediction_score_bucket",
        "shipml_prediction_value_bucket",
        "shipml_input_issues_total",
        "shipml_requests_with_input_issues_total",
        "shipml_monitor_records_dropped_total",
    ):
        assert wanted in used, wanted


def test_every_variable_is_defined() -> None:
    defined = {v["name"] for v in DASHBOARD["templating"]["list"]} | {"__rate_interval"}
    text = json.dumps(DASHBOARD["panels"])
    assert set(VARIABLE.findall(text)) <= defined
    for panel in DASHBOARD["panels"]:
        if "datasource" in panel:
            assert panel["datasource"]["uid"] == "${datasource}"


def test_shipml_monitor_dashboard_prints_it() -> None:
    result = CliRunner().invoke(app, ["monitor", "dashboard"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == DASHBOARD


def test_a_fresh_registry_has_no_monitoring_metrics_when_off() -> None:
    names = {family.name for family in Metrics().registry.collect()}
    assert not any(name.startswith(("shipml_monitor", "shipml_prediction")) for name in names)
