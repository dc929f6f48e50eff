"""The report page: self-contained, and data (names, categories) never becomes markup."""

from __future__ import annotations

import json
import re
from typing import Any

from shipml.monitoring import drift, html

HOSTILE = "<img src=x onerror=alert(1)>"


def page_for(features: list[dict[str, Any]]) -> str:
    report = {
        "shipml": "0", "generated": "2026-11-30T10:00:00Z", "store": "/s", "log_store": "/s",
        "model": {"ref": "m:1", "digest": "sha256:" + "a" * 64, "name": "m", "version": 1},
        "window": {"from": "2026-11-29T10:00:00.000Z", "to": "2026-11-30T10:00:00.000Z"},
        "thresholds": {"watch": drift.WATCH, "drift": drift.DRIFT, "p_value": drift.P_VALUE},
        "summary": {"requests": 200, "records": 200, "records_compared": 200, "files": 1,
                    "damaged_files": [HOSTILE], "first": None, "last": None, "reference": "r",
                    "drifted": [], "max_psi": None, "top_feature": None},
        "features": features, "predictions": [],
        "volume": {"bucket_seconds": 60, "latency_p50_ms": 1.0, "latency_p99_ms": 2.0,
                   "buckets": [{"start": "2026-11-30T09:00:00Z", "requests": 200,
                                "latency_p50_ms": 1.0, "latency_p99_ms": 2.0}]},
    }  # fmt: skip
    return html.render(report)


def test_names_and_categories_from_data_are_text_not_markup() -> None:
    categories = drift.categorical([HOSTILE, "$5 to ${10"] * 50, [HOSTILE] * 100)
    numbers = drift.numeric(list(range(100)), list(range(50, 150)))
    page = page_for(
        [
            {"name": HOSTILE, "kind": "category", "drift": categories.to_json()},
            {"name": "$x^{", "kind": "number", "drift": numbers.to_json()},
        ]
    )
    data_start = page.index('<script type="application/json" id="report-data">')
    assert HOSTILE not in page[:data_start]  # escaped everywhere it is shown
    assert page.count("<script") == 1  # the data block, and no script anywhere else
    assert page.count("<svg") == 4  # ranking, two features, volume
    embedded = page[data_start:].split(">", 1)[1].rsplit("</script>", 1)[0]
    assert json.loads(embedded)["features"][0]["name"] == HOSTILE


def test_the_page_refers_to_nothing_outside_itself() -> None:
    page = page_for([])
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
