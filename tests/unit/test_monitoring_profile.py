"""The monitoring reference save_model keeps: every column type, text, old versions."""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

import shipml
from shipml.monitoring import profile, reading, report
from shipml.monitoring.profile import Reference
from shipml.store import Store
from shipml.store.paths import part_key
from shipml.store.reference import parse_reference
from tests.conftest import IRIS_FEATURES, REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "census"))
from data import census


def census_model() -> tuple[object, object]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = census()
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    words = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    model = make_pipeline(
        ColumnTransformer(
            [
                ("numbers", numbers, ["age", "hours_per_week", "capital_gain"]),
                ("words", words, ["job", "education", "city"]),
                ("flags", "passthrough", ["married"]),
            ]
        ),
        LogisticRegression(max_iter=1000),
    ).fit(x, y)
    return model, x


def saved(ref: str) -> tuple[Store, object, Reference]:
    store = Store()
    parsed = parse_reference(ref)
    manifest, _ = store.manifest(parsed.name, store.resolve(parsed))
    data = store.read_reference(manifest)
    assert data is not None
    return store, manifest, Reference.from_bytes(data)


def test_a_mixed_dataframe_keeps_records_with_nulls_kinds_ranges_and_answers() -> None:
    model, x = census_model()
    shipml.save_model(model, training_data=x, name="census")
    _, manifest, reference = saved("census:1")
    fields = reference.fields
    assert {n: f["kind"] for n, f in fields.items()} == {
        "age": "number",
        "hours_per_week": "number",
        "capital_gain": "number",
        "job": "category",
        "education": "category",
        "city": "category",
        "married": "category",
    }
    assert fields["age"]["min"] == x["age"].min() and fields["age"]["max"] == x["age"].max()
    assert fields["capital_gain"]["missing"] == pytest.approx(x["capital_gain"].isna().mean())
    assert set(fields["job"]["values"]) == {"admin", "craft", "exec", "sales", "service"}
    assert len(reference.records) == 500
    assert any(r["capital_gain"] is None for r in reference.records)  # missing values kept
    assert reference.outputs is not None and len(reference.outputs) == 500
    assert reference.outputs[0]["label"] in {">50K", "<=50K"}
    # the manifest keeps the small profile the serving workers need, and names the blob
    assert manifest.data["profile"]["fields"]["age"] == {
        "kind": "number",
        "min": float(x["age"].min()),
        "max": float(x["age"].max()),
    }
    assert manifest.data["reference"]["digest"] in manifest.blob_digests()
    assert "sample" not in manifest.data  # the ONNX sample stays numeric tables only


def test_a_numeric_table_keeps_both_the_onnx_sample_and_the_reference() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    shipml.save_model(model, training_data=data.data, feature_names=IRIS_FEATURES, name="iris")
    store, manifest, reference = saved("iris:1")
    sample = np.load(io.BytesIO(store.read_sample(manifest) or b""), allow_pickle=False)
    assert sample.shape == (150, 4) and sample.dtype == np.float64  # unchanged format
    assert len(reference.records) == 150
    assert reference.records[0] == dict(zip(IRIS_FEATURES, data.data[0].tolist(), strict=True))


@pytest.mark.parametrize("form", [list, tuple, np.array, lambda t: np.array(t).reshape(-1, 1)])
def test_one_text_field_is_read_from_any_one_column_form(form: object) -> None:
    """save_model hands texts on as a one-column array (a 1-D model input)."""
    texts = [f"text number {i}" for i in range(50)]
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    reference = profile.build(form(texts), schema, 20)  # type: ignore[operator]
    assert reference is not None and len(reference.records) == 20
    assert {r["text"] for r in reference.records} <= set(texts)


def test_text_keeps_a_vocabulary_without_the_sampled_texts() -> None:
    texts = [f"review {i} says the product is good" for i in range(1000)]
    texts[3] = "a unique zyzzyva word"
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    reference = profile.build(texts, schema, 500)
    assert reference is not None
    assert reference.fields["text"]["kind"] == "text"
    sampled = {r["text"] for r in reference.records}
    vocabulary = set(reference.vocabulary["text"])
    assert "zyzzyva" not in vocabulary or texts[3] not in sampled
    assert {"review", "says", "good"} <= vocabulary
    numbers_in_sample = {r["text"].split()[1] for r in reference.records if r["text"][0] == "r"}
    assert not numbers_in_sample & vocabulary  # held out: the sample's own numbers are unseen


def test_sample_rows_zero_keeps_no_reference() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    assert profile.build([[1.0], [2.0]], schema, 0) is None
    assert profile.build(None, schema, 500) is None


def test_a_version_saved_before_monitoring_is_compared_with_its_onnx_sample(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "legacy"
    shutil.copytree(REPO / "tests" / "fixtures" / "legacy-store", legacy)
    store = Store(str(legacy))
    manifest, digest = store.manifest("legacy-iris", 1)
    from sklearn.datasets import load_iris

    rows = load_iris().data[np.random.default_rng(0).integers(0, 150, 300)]
    rows[:, 2] += 6.0  # petal_length: all beyond its training range (1.0 to 6.9)
    lines = [
        {
            "time": f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}.000Z",
            "inputs": [dict(zip(IRIS_FEATURES, row, strict=True))],
            "outputs": [{"label": "virginica"}],
        }
        for i, row in enumerate(rows.tolist())
    ]
    data = gzip.compress(b"\n".join(orjson.dumps(line) for line in lines))
    part = "100000-0a1b2c3d-000001.jsonl.gz"
    store.backend.write(part_key("legacy-iris", 1, "2026-11-30", part), data)
    span = reading.window(None, "2026-11-30", "2026-11-30")
    built = report.build(store, manifest, digest, span)
    assert "numeric training sample" in built["summary"]["reference"]
    assert built["summary"]["requests"] == 300
    assert built["features"][0]["name"] == "petal_length"
    assert built["features"][0]["drift"]["level"] == "drift"
    assert built["features"][0]["out_of_range"] == pytest.approx(1.0)
    assert all(f["drift"]["level"] != "drift" for f in built["features"][1:])
