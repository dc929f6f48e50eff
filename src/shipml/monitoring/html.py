"""The report as one self-contained HTML page: inline CSS, inline SVG figures, no script.

Figures are drawn with matplotlib's object-oriented API (no pyplot, no global backend)
and written as SVG with text kept as text (``svg.fonttype: none``: the browser's own
sans-serif font draws it); each figure gets its own id salt, so many can share a page.
Nothing refers to another file or host: the page opens offline, from a mail attachment
or a CI artifact. The report's JSON is embedded too (``<script type="application/json"
id="report-data">``, data only, never executed).
"""

from __future__ import annotations

import html
import io
import itertools
import re
from collections.abc import Callable
from typing import Any

import orjson

TRAINING, LIVE, ALERT, WATCH, STABLE = "#7f93c8", "#f08a4b", "#c0392b", "#e0a526", "#5b9a68"
LEVEL_COLORS = {"drift": ALERT, "watch": WATCH, "stable": STABLE, "too few": "#9aa0a6"}
MAX_FEATURE_PLOTS = 12
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:32px 0 8px}
.sub{color:#5f6673;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;min-width:140px}
.card b{display:block;font-size:1.4em}.card span{color:#5f6673;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
figure{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:0;padding:8px}
figure svg{width:100%;height:auto}figcaption{font-size:.85em;color:#5f6673;padding:4px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #e4e7ec;padding:6px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.level{display:inline-block;border-radius:10px;padding:1px 8px;color:#fff;font-size:.85em}
.warn{background:#fff4e5;border:1px solid #f0c36d;border-radius:8px;padding:8px 12px}
footer{color:#5f6673;font-size:.85em;margin-top:32px}
"""


def render(report: dict[str, Any]) -> str:
    """The whole page for ``report`` (:func:`shipml.monitoring.report.build`)."""
    from matplotlib import rc_context  # on use: the monitor extra

    figures = Figures()
    # Names and categories come from data: never read as mathtext ("$5 to $10").
    settings: dict[Any, Any] = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                "axes.spines.right": False, "font.family": "sans-serif",
                "text.parse_math": False}  # fmt: skip
    with rc_context(settings):
        body = [
            _header(report),
            _drift_section(report, figures),
            _features_section(report, figures),
            _predictions_section(report, figures),
            _volume_section(report, figures),
            _footer(report),
        ]
    data = orjson.dumps(report).decode().replace("</", "<\\/")
    title = html.escape(f"Monitoring report: {report['model']['ref']}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head><body><main>"
        + "".join(body)
        + f'<script type="application/json" id="report-data">{data}</script>'
        + "</main></body></html>\n"
    )


class Figures:
    """matplotlib figures as inline SVG, each with its own id salt."""

    def __init__(self) -> None:
        self.count = 0

    def svg(self, draw: Callable[[Any], None], width: float, height: float) -> str:
        from matplotlib import rc_context  # on use: the monitor extra
        from matplotlib.figure import Figure

        self.count += 1
        salt: dict[Any, Any] = {"svg.hashsalt": f"shipml-figure-{self.count}"}
        with rc_context(salt):
            figure = Figure(figsize=(width, height), layout="constrained")
            draw(figure)
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        text = buffer.getvalue()
        text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
        return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else _esc(value)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _level(level: str | None) -> str:
    if level is None:
        return ""
    color = LEVEL_COLORS.get(level, "#9aa0a6")
    return f'<span class="level" style="background:{color}">{_esc(level)}</span>'


def _header(report: dict[str, Any]) -> str:
    model, summary, window = report["model"], report["summary"], report["window"]
    top = summary.get("top_feature")
    cards = [
        (f"{summary['requests']:,}", "requests logged"),
        (f"{summary['records']:,}", "records"),
        (_number(summary.get("max_psi")), f"highest drift (PSI){f': {top}' if top else ''}"),
        (str(len(summary["drifted"])), f"features drifted (PSI ≥ {report['thresholds']['drift']})"),
        (f"{summary['files']:,}", "log files read"),
    ]
    parts = [
        f"<h1>{_esc(model['ref'])}: monitoring report</h1>",
        f'<p class="sub">{_esc(window["from"])} to {_esc(window["to"])} (UTC) · model digest '
        f"{_esc(model['digest'][:19])}… · store {_esc(report['store'])} · reference: "
        f"{_esc(summary['reference'])}</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{v}</b><span>{_esc(k)}</span></div>' for v, k in cards)
        + "</div>",
    ]
    if summary["damaged_files"]:
        names = ", ".join(summary["damaged_files"][:5])
        parts.append(
            f'<p class="warn">{len(summary["damaged_files"])} log file(s) could not be read '
            f"and were skipped: {_esc(names)}</p>"
        )
    if not summary["requests"]:
        parts.append(
            '<p class="warn">No logged requests in this window. Is monitoring on '
            "(SHIPML_MONITOR=true)? Each worker writes a file every monitor_interval "
            "seconds.</p>"
        )
    return "".join(parts)


def _drift_section(report: dict[str, Any], figures: Figures) -> str:
    scored = [f for f in report["features"] if f.get("drift")]
    if not scored:
        return ""
    threshold = report["thresholds"]["drift"]

    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        shown = scored[::-1][-25:]
        values = [f["drift"]["psi"] for f in shown]
        colors = [LEVEL_COLORS.get(f["drift"]["level"], "#9aa0a6") for f in shown]
        axes.barh([f["name"] for f in shown], values, color=colors)
        axes.axvline(threshold, color=ALERT, linestyle="--", linewidth=1)
        axes.axvline(report["thresholds"]["watch"], color=WATCH, linestyle=":", linewidth=1)
        axes.set_xlabel("population stability index (PSI), training vs live")

    height = 1.2 + 0.28 * min(len(scored), 25)
    rows = "".join(
        f"<tr><td>{_esc(f['name'])}</td><td>{_esc(f['kind'])}</td>"
        f"<td class=n>{_number(f['drift']['psi'])}</td><td>{_level(f['drift']['level'])}</td>"
        f"<td>{_esc(f['drift']['test'])}</td><td class=n>{_number(f['drift']['p_value'], 2)}</td>"
        f"<td class=n>{_percent(f.get('training_missing'))}</td>"
        f"<td class=n>{_percent(f.get('live_missing'))}</td>"
        f"<td class=n>{_percent(f.get('out_of_range', f.get('unseen')))}</td>"
        f"<td class=n>{_number(f['drift']['live_values'])}</td></tr>"
        for f in scored
    )
    notes = "".join(
        f"<li>{_esc(f['name'])}: {_esc(f['note'])}</li>"
        for f in report["features"]
        if f.get("note")
    )
    return (
        "<h2>Drift per feature, ranked</h2>"
        f"<figure>{figures.svg(draw, 9, height)}</figure>"
        "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>level</th><th>test</th>"
        "<th>p-value</th><th>missing, training</th><th>missing, live</th>"
        "<th>out of range / unseen</th><th>live values</th></tr>"
        f"{rows}</table>" + (f"<ul>{notes}</ul>" if notes else "")
    )


def _bars(figure: Any, entry: dict[str, Any], title: str) -> None:
    result = entry["drift"]
    axes = figure.add_subplot()
    histogram = result.get("histogram")
    if histogram:  # numbers: equal-width histograms on one scale
        edges = histogram["edges"]
        width = (edges[1] - edges[0]) * 0.45
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        axes.bar([c - width / 2 for c in centres], histogram["training"], width, color=TRAINING,
                 label="training")  # fmt: skip
        axes.bar([c + width / 2 for c in centres], histogram["live"], width, color=LIVE,
                 label="live")  # fmt: skip
    else:  # categories: side-by-side bars per category
        labels = result["bins"][:20]
        positions = list(range(len(labels)))
        axes.bar([p - 0.2 for p in positions], result["training_share"][:20], 0.4,
                 color=TRAINING, label="training")  # fmt: skip
        axes.bar([p + 0.2 for p in positions], result["live_share"][:20], 0.4, color=LIVE,
                 label="live")  # fmt: skip
        axes.set_xticks(positions, [label[:14] for label in labels], rotation=30, ha="right")
    axes.set_ylabel("share")
    axes.set_title(title, fontsize=9, loc="left")
    axes.legend(frameon=False, fontsize=8)


def _features_section(report: dict[str, Any], figures: Figures) -> str:
    scored = [f for f in report["features"] if f.get("drift")][:MAX_FEATURE_PLOTS]
    if not scored:
        return ""
    items = []
    for entry in scored:
        result = entry["drift"]
        title = f"{entry['name']}: PSI {result['psi']:.3f} ({result['level']})"

        def draw(figure: Any, entry: dict[str, Any] = entry, title: str = title) -> None:
            _bars(figure, entry, title)

        extra = ""
        if "training_mean" in result:
            extra = (
                f"mean {result['training_mean']:.4g} → {result['live_mean']:.4g}, "
                f"std {result['training_std']:.4g} → {result['live_std']:.4g}; "
            )
        caption = (
            f"{extra}{result['test']} p = {result['p_value']:.2g}; "
            f"{result['training_values']:,} training vs {result['live_values']:,} live values"
        )
        items.append(
            f"<figure>{figures.svg(draw, 4.6, 2.6)}<figcaption>{_esc(caption)}</figcaption>"
            "</figure>"
        )
    return (
        "<h2>Training vs live, most drifted first</h2><div class=grid>" + "".join(items) + "</div>"
    )


def _predictions_section(report: dict[str, Any], figures: Figures) -> str:
    items = []
    for entry in report["predictions"]:
        result = entry.get("drift")
        if not result:
            continue
        title = f"{entry['name']}: PSI {result['psi']:.3f} ({result['level']})"

        def draw(figure: Any, entry: dict[str, Any] = entry, title: str = title) -> None:
            _bars(figure, entry, title)

        caption = f"against {entry['against']}; {result['test']} p = {result['p_value']:.2g}"
        items.append(
            f"<figure>{figures.svg(draw, 4.6, 2.6)}<figcaption>{_esc(caption)}</figcaption>"
            "</figure>"
        )
    if not items:
        return ""
    return "<h2>Answers</h2><div class=grid>" + "".join(items) + "</div>"


def _volume_section(report: dict[str, Any], figures: Figures) -> str:
    volume = report["volume"]
    buckets = volume["buckets"]
    if not buckets:
        return ""

    def draw(figure: Any) -> None:
        top, bottom = figure.subplots(2, 1, sharex=True)
        positions = list(range(len(buckets)))
        top.bar(positions, [b["requests"] for b in buckets], color=TRAINING)
        top.set_ylabel(f"requests / {volume['bucket_seconds']} s")
        for key, color, name in (
            ("latency_p50_ms", STABLE, "p50"),
            ("latency_p99_ms", ALERT, "p99"),
        ):
            bottom.plot(positions, [b[key] for b in buckets], color=color, label=name, marker=".")
        bottom.set_ylabel("latency (ms)")
        bottom.legend(frameon=False, fontsize=8)
        step = max(1, len(buckets) // 8)
        seconds = volume["bucket_seconds"] < 60  # show seconds only when buckets are that short
        ticks = [b["start"][5 : 19 if seconds else 16].replace("T", " ") for b in buckets]
        bottom.set_xticks(positions[::step], ticks[::step])

    return (
        "<h2>Volume and latency over time</h2>"
        f"<figure>{figures.svg(draw, 9, 4)}<figcaption>latency inside the service (queue and "
        f"model), p50 {_number(volume['latency_p50_ms'])} ms, p99 "
        f"{_number(volume['latency_p99_ms'])} ms over the window</figcaption></figure>"
    )


def _footer(report: dict[str, Any]) -> str:
    t = report["thresholds"]
    return (
        f"<footer>PSI below {t['watch']}: stable; {t['watch']} to {t['drift']}: watch; "
        f"{t['drift']} and above: drift. Numbers: ten training-decile bins and the "
        "Kolmogorov-Smirnov test; categories: training categories plus unseen ones and the "
        "chi-square test; text: length, word count and share of words unseen in training. "
        f"Generated by shipml {_esc(report['shipml'])} at {_esc(report['generated'])}. "
        "See docs/monitoring.md.</footer>"
    )
