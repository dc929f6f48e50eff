"""``shipml monitor report``: the logged requests of a version against its training data.

The report is one JSON-able dict (written as ``--json`` and embedded in the HTML):

- ``features``: one entry per input field, ranked by drift (PSI, :mod:`.drift`): its
  kind, the test and p-value, training and live histograms, missing-value shares
  (training: all of the training data; live: the window), the share of numbers outside
  the training range and of categories never seen in training. A text field becomes
  three derived features (:mod:`.text`);
- ``predictions``: the distribution of the answers (labels, the probability of the
  predicted class, a score, a regression output) against the model's answers to the
  training sample, or — when shipml could not score it at save time (``score.py``
  models, versions saved before monitoring) — the first half of the window against the
  second;
- ``volume``: requests and latency (p50, p99) over time;
- ``summary``: counts, the window, the most drifted feature and the flagged ones.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np

from shipml import __version__
from shipml.monitoring import drift, reading, text
from shipml.monitoring.profile import Reference
from shipml.monitoring.reading import LiveData, Window
from shipml.store import Store
from shipml.store.manifest import Manifest

HASHED = "sha256:"


def build(
    store: Store, manifest: Manifest, digest: str, span: Window, log: Store | None = None
) -> dict[str, Any]:
    """The report of ``manifest``'s version (from ``store``) for ``span``; the payload
    log is read from ``log`` (default: the same store)."""
    reference, note = load_reference(store, manifest)
    log = log or store
    live = reading.read(log.backend, manifest.name, manifest.version, span)
    inputs = [row[1] for row in live.rows if isinstance(row[1], dict)]
    features = compare_features(reference, inputs) if reference else []
    features.sort(key=lambda f: (f.get("drift") or {}).get("psi", -1.0), reverse=True)
    predictions = compare_predictions(reference, live)
    drifted = [f["name"] for f in features if (f.get("drift") or {}).get("level") == "drift"]
    # too few live values to judge: shown, never the reason to fail a pipeline
    scored = [f for f in features if f.get("drift") and f["drift"]["level"] != "too few"]
    top = scored[0] if scored else None
    return {
        "shipml": __version__,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "ref": manifest.ref,
            "digest": digest,
            "created": manifest.created,
        },
        "store": store.url,
        "log_store": log.url,
        "window": {"from": span.stamps()[0], "to": span.stamps()[1]},
        "thresholds": {"watch": drift.WATCH, "drift": drift.DRIFT, "p_value": drift.P_VALUE},
        "summary": {
            "requests": live.requests,
            "records": live.records,
            "records_compared": len(inputs),
            "files": live.files,
            "damaged_files": live.damaged,
            "first": live.first,
            "last": live.last,
            "reference": note,
            "drifted": drifted,
            "max_psi": top["drift"]["psi"] if top else None,
            "top_feature": top["name"] if top else None,
        },
        "features": features,
        "predictions": predictions,
        "volume": volume(live),
    }


def load_reference(store: Store, manifest: Manifest) -> tuple[Reference | None, str]:
    """The version's reference, or the ONNX sample of older versions, and what it is."""
    data = store.read_reference(manifest)
    if data is not None:
        reference = Reference.from_bytes(data)
        return reference, f"{len(reference.records)} training records kept with the version"
    sample = store.read_sample(manifest)
    schema = manifest.input_schema or {}
    names = list(schema.get("required") or schema.get("properties") or [])
    if sample is not None and names:
        matrix = np.load(io.BytesIO(sample), allow_pickle=False)
        records = [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
        fields: dict[str, dict[str, Any]] = {
            name: {
                "kind": "number",
                "min": float(matrix[:, i].min()),
                "max": float(matrix[:, i].max()),
            }
            for i, name in enumerate(names)
        }
        return Reference(fields, records), (
            f"the {len(records)}-row numeric training sample (a version saved before shipml "
            "kept a monitoring reference: ranges come from the sample, missing values were "
            "left out of it)"
        )
    return None, (
        "none: the version keeps no training sample (saved without training_data, or "
        "with sample_rows=0); only volume, latency and answers are shown"
    )


def compare_features(reference: Reference, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    features = []
    for name, spec in reference.fields.items():
        kind = spec["kind"]
        ref_values = [r.get(name) for r in reference.records]
        live_values = [r.get(name) for r in inputs if name in r]
        entry: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "training_missing": spec.get("missing", _missing(ref_values)),
            "live_missing": _missing([r.get(name) for r in inputs]) if inputs else None,
        }
        if inputs and not live_values:
            features.append(entry | {"note": "not in the log (redacted?)"})
            continue
        present = [v for v in live_values if v is not None]
        if present and all(isinstance(v, str) and v.startswith(HASHED) for v in present[:50]):
            features.append(entry | {"note": "hashed in the log: only missing values compared"})
            continue
        if kind == "text":
            vocabulary = frozenset(reference.vocabulary.get(name, ()))
            derived = [_text_features(values, vocabulary) for values in (ref_values, live_values)]
            for index, feature in enumerate(text.FEATURES):
                result = drift.numeric(derived[0][index], derived[1][index])
                features.append(
                    {**entry, "name": f"{name}.{feature}", "kind": "text", "field": name}
                    | {"drift": result.to_json()}
                )
            continue
        if kind in ("number", "datetime"):
            ref_numbers, live_numbers = _numbers(ref_values, kind), _numbers(present, kind)
            result = drift.numeric(ref_numbers, live_numbers)
            if "min" in spec and live_numbers:
                outside = [v for v in live_numbers if not spec["min"] <= v <= spec["max"]]
                entry["out_of_range"] = len(outside) / len(live_numbers)
                entry["training_range"] = [spec["min"], spec["max"]]
        else:  # a missing value is a category of its own: more nulls is a change too
            result = drift.categorical(
                [drift.MISSING if v is None else v for v in ref_values],
                [drift.MISSING if v is None else v for v in live_values],
                spec.get("values") or (),
            )
            if spec.get("complete"):
                entry["unseen"] = result.extra["unseen_share"]
        features.append(entry | {"drift": result.to_json()})
    return features


def _missing(values: list[Any]) -> float:
    return sum(v is None for v in values) / len(values) if values else 0.0


def _numbers(values: list[Any], kind: str) -> list[float]:
    if kind == "datetime":
        found = []
        for value in values:
            try:
                found.append(dt.datetime.fromisoformat(str(value)).timestamp())
            except ValueError:
                continue
        return found
    return [float(v) for v in values if _is_number(v)]


def _text_features(values: list[Any], vocabulary: frozenset[str]) -> list[list[float]]:
    rows = [text.features(v, vocabulary) for v in values if isinstance(v, str)]
    return [[row[i] for row in rows] for i in range(len(text.FEATURES))]


def compare_predictions(reference: Reference | None, live: LiveData) -> list[dict[str, Any]]:
    """Each answer field's distribution: training answers against live, or early against
    late in the window when the training answers are not known."""
    rows = sorted((row for row in live.rows if isinstance(row[2], dict)), key=lambda r: r[0])
    answers = [row[2] for row in rows]
    trained = [a for a in (reference.outputs or []) if isinstance(a, dict)] if reference else []
    if trained:
        baseline, current, against = trained, answers, "the model's answers to the training sample"
    else:
        middle = len(answers) // 2
        baseline, current = answers[:middle], answers[middle:]
        against = "the first half of the window (no training answers are kept for this version)"
    found = []
    for key, kind in _answer_fields(answers):
        before, after = _answer_values(baseline, key), _answer_values(current, key)
        if not after:
            continue
        if kind == "number":
            result = drift.numeric(before, after) if before else None
        else:
            result = drift.categorical(before, after) if before else None
        found.append(
            {
                "name": key,
                "kind": kind,
                "against": against,
                "drift": result.to_json() if result else None,
            }
        )
    return found


def _answer_fields(answers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The answer fields worth a distribution: labels, the top probability, scores."""
    fields: list[tuple[str, str]] = []
    sample = answers[:200]
    if any("label" in a for a in sample):
        fields.append(("label", "category"))
    if any(isinstance(a.get("probabilities"), dict) for a in sample):
        fields.append(("confidence", "number"))
    for key in ("score", "prediction"):
        if any(
            isinstance(a.get(key), int | float) and not isinstance(a.get(key), bool) for a in sample
        ):
            fields.append((key, "number"))
        elif any(isinstance(a.get(key), str) for a in sample):
            fields.append((key, "category"))
    return fields


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _answer_values(answers: list[dict[str, Any]], key: str) -> list[Any]:
    if key == "confidence":
        values = []
        for answer in answers:
            probabilities = answer.get("probabilities")
            if isinstance(probabilities, dict) and probabilities:
                values.append(max(probabilities.values()))
        return values
    return [a[key] for a in answers if a.get(key) is not None]


def volume(live: LiveData) -> dict[str, Any]:
    """Requests and latency per time bucket (about 40 buckets over the data's span)."""
    if not live.first or not live.last:
        return {"bucket_seconds": None, "buckets": []}
    size = max(reading.bucket_seconds(live.first, live.last), live.grain)
    counts: dict[str, int] = {}
    for start, count in live.volume.items():
        key = reading.bucket_of(start, size)
        counts[key] = counts.get(key, 0) + count
    latencies: dict[str, list[float]] = {}
    for moment, latency in live.latencies:
        latencies.setdefault(reading.bucket_of(moment, size), []).append(latency)
    buckets = []
    for key in sorted(counts):
        values = latencies.get(key) or []
        buckets.append(
            {
                "start": key,
                "requests": counts[key],
                "latency_p50_ms": _percentile(values, 50),
                "latency_p99_ms": _percentile(values, 99),
            }
        )
    every = [latency for _, latency in live.latencies]
    return {
        "bucket_seconds": size,
        "buckets": buckets,
        "latency_p50_ms": _percentile(every, 50),
        "latency_p99_ms": _percentile(every, 99),
    }


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
