"""The monitoring reference of a version: what live traffic is compared with.

``save_model`` builds it from the training data, in the request's own shape, for every
kind of model the service serves: numeric tables, mixed DataFrames (categories, strings,
flags, date-times, missing values) and ``score.py`` models whose records hold text. It
has two parts:

- the **profile**, small, kept in the manifest (``data.profile``) so that a serving
  worker — which never reads the store beyond its model, and in an image not at all —
  knows each field's kind, the training range of numbers and the categories of strings:
  the live counters of out-of-range values and unseen categories need nothing else;
- the **reference** blob (``data.reference``: digest, size, rows), like the ONNX
  training sample a blob of the store that is neither fetched for serving nor put in an
  image: up to ``sample_rows`` training records drawn at random (with their missing
  values, unlike the ONNX sample), the model's answers to them when shipml can score
  them at save time (zero-code models), and the training vocabulary of text fields.

Ranges, categories and missing shares come from all of the training data; the records
are a sample. The numeric ``training-sample.npy`` is unchanged (the ONNX check reads it).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from shipml.monitoring import text
from shipml.scoring.schema import InputSchema, plain

REFERENCE_FILE = "monitoring-reference.json.gz"
FORMAT = 1
MAX_CATEGORIES = 50
# Answer fields compared and histogrammed as numbers besides class labels.
SCORE_KEYS = ("score", "prediction")

Answers = Callable[[list[dict[str, Any]]], list[Any] | None]


@dataclass
class Reference:
    fields: dict[str, dict[str, Any]]
    records: list[dict[str, Any]]
    outputs: list[Any] | None = None
    vocabulary: dict[str, list[str]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "fields": self.fields,
            "records": self.records,
            "outputs": self.outputs,
            "vocabulary": self.vocabulary,
        }
        return gzip.compress(orjson.dumps(document), compresslevel=6, mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        document = orjson.loads(gzip.decompress(data))
        return cls(
            fields=document["fields"],
            records=document["records"],
            outputs=document.get("outputs"),
            vocabulary=document.get("vocabulary") or {},
        )

    def profile(self) -> dict[str, Any]:
        """What the manifest keeps (``data.profile``) for the serving workers."""
        fields = {}
        for name, spec in self.fields.items():
            kept: dict[str, Any] = {
                k: spec[k] for k in ("kind", "min", "max", "complete") if k in spec
            }
            if spec["kind"] == "category":
                kept["values"] = spec.get("values", [])
            fields[name] = kept
        return {"fields": fields, "outputs": output_profile(self.outputs)}


def output_profile(outputs: list[Any] | None) -> dict[str, Any]:
    """Range and deciles of each numeric answer field (a regressor's ``prediction``): the
    buckets of the live histogram of regression outputs."""
    found: dict[str, Any] = {}
    if not outputs:
        return found
    for key in SCORE_KEYS:
        values = [
            a[key]
            for a in outputs
            if isinstance(a, dict)
            and isinstance(a.get(key), int | float)
            and not isinstance(a.get(key), bool)
        ]
        if values:
            deciles = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, 11))
            edges = sorted({float(v) for v in deciles})
            found[key] = {"min": edges[0], "max": edges[-1], "edges": edges}
    return found


def build(
    data: Any, schema: dict[str, Any] | None, rows: int, answers: Answers | None = None
) -> Reference | None:
    """The reference of ``data`` (the features a request carries) under ``schema``, or None
    when there is nothing to compare with (no data, no schema, ``rows`` 0)."""
    if rows <= 0 or data is None or schema is None:
        return None
    properties = schema["properties"]
    names = list(schema.get("required") or properties)
    columns = _columns(data, names)
    if columns is None:
        return None
    count = len(next(iter(columns.values()))) if columns else 0
    if count == 0:
        return None
    chosen = np.arange(count)
    if count > rows:
        chosen = np.sort(np.random.default_rng(0).choice(count, size=rows, replace=False))
    picked = {name: _pick(values, chosen) for name, values in columns.items()}
    records = [{name: picked[name][i] for name in names} for i in range(len(chosen))]
    fields: dict[str, dict[str, Any]] = {}
    vocabulary: dict[str, list[str]] = {}
    left_out = np.ones(count, dtype=bool)
    left_out[chosen] = False
    for name in names:
        spec = _field(properties[name], columns[name], picked[name])
        fields[name] = spec
        if spec["kind"] == "text":
            rest = _pick(columns[name], np.flatnonzero(left_out))
            vocabulary[name] = text.vocabulary(v for v in rest if isinstance(v, str))
    outputs = None
    if answers is not None:
        try:
            outputs = answers(records)
        except Exception:  # a model that cannot score its own sample: compare inputs only
            outputs = None
    return Reference(fields, records, outputs, vocabulary)


def _columns(data: Any, names: list[str]) -> dict[str, Any] | None:
    """One sequence per field, whatever form the training data has."""
    try:
        if hasattr(data, "iloc"):
            return {name: data[name] for name in names}
        if isinstance(data, dict):
            return {name: data[name] for name in names}
        if isinstance(data, list | tuple) and data and len(names) == 1:
            first = data[0]
            if isinstance(first, str) or not isinstance(first, Sequence):  # one value a row
                return {names[0]: list(data)}
        array = np.asarray(data)
        if array.ndim == 1 and len(names) == 1:
            return {names[0]: array}
        if array.ndim != 2 or array.shape[1] != len(names):
            return None
        return {name: array[:, i] for i, name in enumerate(names)}
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _pick(values: Any, index: np.ndarray) -> list[Any]:
    if hasattr(values, "iloc"):
        chosen = values.iloc[index].tolist()
    elif isinstance(values, np.ndarray):
        chosen = values[index].tolist()
    else:
        chosen = [values[i] for i in index.tolist()]
    return [plain(v) for v in chosen]


def _field(prop: dict[str, Any], column: Any, sample: list[Any]) -> dict[str, Any]:
    """Kind, range or categories and missing share of one training column."""
    kinds = prop.get("type", "number")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    kind = next((k for k in kinds if k != "null"), "string")
    total = len(column)
    if kind in ("number", "integer"):
        numbers = _floats(column)
        present = numbers[~np.isnan(numbers)]
        spec: dict[str, Any] = {"kind": "number", "missing": 1 - len(present) / total}
        if len(present):
            spec |= {"min": float(present.min()), "max": float(present.max())}
        return spec
    values = [plain(v) for v in (column.tolist() if hasattr(column, "tolist") else column)]
    present_values = [v for v in values if v is not None]
    missing = 1 - len(present_values) / total
    if kind == "boolean":
        return {"kind": "category", "values": [False, True], "complete": True, "missing": missing}
    if prop.get("format") == "date-time":
        return {"kind": "datetime", "missing": missing}
    counts = Counter(present_values)
    if "enum" in prop:
        known = [v for v in prop["enum"] if v is not None]
        return {"kind": "category", "values": known, "complete": True, "missing": missing}
    if len(counts) <= MAX_CATEGORIES:
        ordered = [v for v, _ in counts.most_common()]
        return {"kind": "category", "values": ordered, "complete": True, "missing": missing}
    strings = [v for v in sample if isinstance(v, str)]
    if text.looks_like_text(strings, len(counts)):
        return {"kind": "text", "missing": missing}
    top = [v for v, _ in counts.most_common(MAX_CATEGORIES)]
    return {"kind": "category", "values": top, "complete": False, "missing": missing}


def _floats(column: Any) -> np.ndarray:
    if hasattr(column, "to_numpy"):
        try:
            return np.asarray(column.to_numpy(dtype="float64", na_value=np.nan))
        except (TypeError, ValueError):
            pass
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        values = column.tolist() if hasattr(column, "tolist") else list(column)
        return np.array(
            [
                v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                for v in values
            ],
            dtype=np.float64,
        )


def answers_of(loaded: Any, schema: dict[str, Any], frame: bool) -> Answers:
    """Score sample records as the zero-code service answers them (label and
    probabilities, or the prediction), for the reference's ``outputs``."""

    compiled = InputSchema(schema)

    def score(records: Sequence[dict[str, Any]]) -> list[Any] | None:
        batch = compiled.batch(list(records), rows=False, frame=frame)
        output = loaded.predict(compiled.model_input(batch, frame))
        if loaded.probabilities:
            classes = list(loaded.classes)
            keys = [str(c) for c in classes]
            return [
                {
                    "label": plain(classes[int(np.argmax(row))]),
                    "probabilities": dict(zip(keys, row, strict=True)),
                }
                for row in np.asarray(output).tolist()
            ]
        key = "label" if loaded.classes else "prediction"
        return [{key: plain(value)} for value in np.asarray(output).tolist()]

    return score
