"""ONNX Runtime scoring: real skl2onnx conversions checked against real scikit-learn models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

import shipml
from shipml.errors import IntegrityError, InvalidInput
from shipml.flavours.sklearn import FLAVOUR as SKLEARN
from shipml.saving import SAMPLE_ROWS
from shipml.scoring import load_scorer
from shipml.scoring.convert import (
    ConversionError,
    ConversionMismatch,
    convert_version,
    load_sample,
    onnx_version,
)
from shipml.scoring.model import ModelScorer
from shipml.scoring.onnx import CONVERSION, GRAPH, OnnxScorer
from shipml.store import LocalModel, Store, parse_reference
from tests.conftest import IRIS_FEATURES, SEED_IRIS_RECORD


def publish(model: object, x: np.ndarray, name: str, **options: object) -> tuple[Store, LocalModel]:
    names = options.pop("feature_names", None) or [f"f{i}" for i in range(x.shape[1])]
    ref = shipml.save_model(model, training_data=x, feature_names=names, name=name, **options)  # type: ignore[arg-type]
    store = Store()
    return store, store.fetch(parse_reference(ref))


def iris() -> tuple[np.ndarray, np.ndarray]:
    data = load_iris()
    return data.data, data.target_names[data.target]


def assert_same_answers(sklearn: ModelScorer, onnx: OnnxScorer, rows: np.ndarray) -> None:
    """What a client sees: the same labels, probabilities within 1e-4, the same keys."""
    expected = sklearn.predict(sklearn.prepare({"inputs": rows.tolist()}, b"").data)
    got = onnx.predict(onnx.prepare({"inputs": rows.tolist()}, b"").data)
    assert len(got) == len(expected) == len(rows)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.keys() == theirs.keys()
        if "label" in theirs:
            assert mine["label"] == theirs["label"]
            assert type(mine["label"]) is type(theirs["label"])
        if "probabilities" in theirs:
            assert mine["probabilities"].keys() == theirs["probabilities"].keys()
            for key, value in theirs["probabilities"].items():
                assert abs(mine["probabilities"][key] - value) < 1e-4
        if "prediction" in theirs:
            assert mine["prediction"] == pytest.approx(theirs["prediction"], rel=1e-4)
    assert onnx.output_schema == sklearn.output_schema
    assert onnx.classes == sklearn.classes and onnx.task == sklearn.task


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=500),
        # the iris example's model: scaled, calibrated SVC with string labels
        make_pipeline(
            StandardScaler(), CalibratedClassifierCV(SVC(random_state=0), ensemble=False)
        ),
    ],
    ids=["logistic", "calibrated-svc"],
)
def test_iris_through_onnx_answers_like_sklearn(model: object, tmp_path: Path) -> None:
    x, y = iris()
    store, local = publish(model.fit(x, y), x, "iris", feature_names=IRIS_FEATURES)  # type: ignore[attr-defined]
    with onnx_version(local, store) as (converted, check):
        assert check.rows == 151 and check.differing == 0  # 150 sampled rows + the example
        assert check.largest_difference < 1e-5
        scorer = load_scorer(converted)
        assert isinstance(scorer, OnnxScorer) and scorer.engine == "onnxruntime"
        seed = scorer.predict(scorer.prepare(SEED_IRIS_RECORD, b"").data)[0]
        assert seed["label"] == "virginica"
        assert abs(sum(seed["probabilities"].values()) - 1) < 1e-5
        reference = load_scorer(local)
        assert isinstance(reference, ModelScorer)
        assert_same_answers(reference, scorer, x)


def test_digits_forest_through_onnx_answers_like_sklearn() -> None:
    x, y = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    store, local = publish(forest, x, "digits")
    with onnx_version(local, store) as (converted, check):
        assert check.rows == SAMPLE_ROWS + 1 and check.differing == 0
        scorer = load_scorer(converted)
        assert isinstance(scorer, OnnxScorer)
        assert scorer.classes == list(range(10))  # integer labels stay integers
        assert_same_answers(
            ModelScorer(SKLEARN.wrap(forest, False), local.manifest, SKLEARN), scorer, x
        )


def test_regressor_and_label_only_classifier() -> None:
    x, target = load_diabetes(return_X_y=True)
    store, local = publish(LinearRegression().fit(x, target), x, "diabetes")
    with onnx_version(local, store) as (converted, _):
        scorer = load_scorer(converted)
        assert isinstance(scorer, OnnxScorer) and scorer.task == "regression"
        assert_same_answers(load_scorer(local), scorer, x)  # type: ignore[arg-type]
    xi, yi = iris()
    store, local = publish(LinearSVC().fit(xi, yi), xi, "svm")  # no predict_proba: labels only
    with onnx_version(local, store) as (converted, check):
        scorer = load_scorer(converted)
        assert isinstance(scorer, OnnxScorer) and check.labels_differing == 0
        assert_same_answers(load_scorer(local), scorer, xi)  # type: ignore[arg-type]


def test_float32_cancellation_is_refused_with_the_numbers() -> None:
    """A real disagreement: features near 1e6 whose signal is in the hundredths. float32
    keeps ~7 digits, so ONNX Runtime scales rounded values and answers differently."""
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 0.01, size=(300, 2))
    x = 1e6 + offsets
    y = np.where(offsets.sum(axis=1) > 0, "up", "down")
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    assert model.score(x, y) > 0.95  # the model itself is fine in float64
    store, local = publish(model, x, "drift")
    with pytest.raises(ConversionMismatch) as refused, onnx_version(local, store):
        pass
    message = refused.value.message
    assert "drift:1" in message and "of 301 check rows" in message
    assert "labels differ" in message and "largest probability difference 0.5" in message
    assert "tolerance 0.0001" in message and "without --onnx" in message


def test_a_tighter_tolerance_than_float32_allows_is_refused(tmp_path: Path) -> None:
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "iris")
    with pytest.raises(ConversionMismatch, match=r"on \d+ of 151 check rows \(0 labels differ"):
        convert_version(local, load_sample(store, local.manifest), tmp_path / "m", tolerance=1e-12)


def test_unsupported_estimator_is_named() -> None:
    x, y = iris()
    store, local = publish(LabelSpreading().fit(x, y), x, "spread")
    with pytest.raises(ConversionError, match=r"cannot convert LabelSpreading to ONNX: skl2onnx"):
        onnx_version(local, store).__enter__()
    store, local = publish(make_pipeline(StandardScaler(), LabelSpreading()).fit(x, y), x, "pipe")
    with pytest.raises(
        ConversionError, match=r"LabelSpreading \(inside Pipeline\).*without --onnx"
    ):
        onnx_version(local, store).__enter__()


def test_versions_without_a_sample_or_numbers_are_refused() -> None:
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "private", sample_rows=0)
    assert "sample" not in local.manifest.data
    with pytest.raises(ConversionError, match=r"private:1 keeps no training sample.*sample_rows=0"):
        onnx_version(local, store).__enter__()
    texts = pd.DataFrame({"text": ["hi there", "bye now"] * 10})
    reader = make_pipeline(
        make_column_transformer((TfidfVectorizer(), "text")), LogisticRegression()
    )
    ref = shipml.save_model(
        reader.fit(texts, [0, 1] * 10), input_example={"text": "hi"}, name="words"
    )
    words = store.fetch(parse_reference(ref))
    with pytest.raises(ConversionError, match=r"features are all numbers.*text \(string\)"):
        convert_version(words, x, Path("/nonexistent"))


def test_the_sample_is_bounded_stored_once_and_never_served(isolated_store: Path) -> None:
    x, y = load_digits(return_X_y=True)
    store, local = publish(DecisionTreeClassifier(max_depth=2).fit(x, y), x, "digits")
    sample_entry = local.manifest.data["sample"]
    assert sample_entry["rows"] == SAMPLE_ROWS and local.manifest.data["rows"] == len(x)
    assert sample_entry["digest"] not in {e.digest for e in local.manifest.files.values()}
    sample = load_sample(store, local.manifest)
    assert sample.shape == (SAMPLE_ROWS, 64) and sample.dtype == np.float64
    picked = [int(np.flatnonzero((x == row).all(axis=1))[0]) for row in sample[:50]]
    assert picked == sorted(picked) and picked[-1] > 50  # drawn across the data, kept in order
    assert not any("sample" in p.name for p in local.folder.rglob("*"))  # not fetched to serve
    blob = isolated_store / "blobs" / "sha256" / sample_entry["digest"].removeprefix("sha256:")
    assert blob.is_file()
    data = blob.read_bytes()
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="refusing to load digits:1: the training sample"):
        load_sample(store, local.manifest)
    store.remove("digits", 1)
    assert not blob.exists()  # removed with its version
    model = LogisticRegression().fit([[1, 4], [2, 5], [3, 6]], [0, 1, 1])
    ref = shipml.save_model(model, feature_names=["a", "b"], name="bare")
    assert "sample" not in store.fetch(parse_reference(ref)).manifest.data  # no data, no sample
    columns = {"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]}
    ref = shipml.save_model(model, training_data=columns, name="dict")
    assert load_sample(store, store.fetch(parse_reference(ref)).manifest).tolist() == [
        [1.0, 4.0],
        [2.0, 5.0],
        [3.0, 6.0],
    ]


def test_a_changed_graph_or_another_versions_conversion_is_refused() -> None:
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "iris")
    with onnx_version(local, store) as (converted, _):
        graph = converted.folder / GRAPH
        original = graph.read_bytes()
        graph.write_bytes(original + b"\0")
        with pytest.raises(IntegrityError, match="does not match the digest recorded"):
            load_scorer(converted)
        graph.write_bytes(original)
        record = orjson.loads((converted.folder / CONVERSION).read_bytes())
        record["model_digest"] = "sha256:" + "0" * 64
        (converted.folder / CONVERSION).write_bytes(orjson.dumps(record))
        with pytest.raises(IntegrityError, match=r"not from iris:1"):
            load_scorer(converted)


def test_the_same_model_converts_to_the_same_bytes(tmp_path: Path) -> None:
    """So a rebuild of an unchanged version keeps the image's model layer cached."""
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "iris")
    sample = load_sample(store, local.manifest)
    first, _ = convert_version(local, sample, tmp_path / "a")
    second, _ = convert_version(local, sample, tmp_path / "b")
    assert (first.folder / GRAPH).read_bytes() == (second.folder / GRAPH).read_bytes()
    assert (first.folder / CONVERSION).read_bytes() == (second.folder / CONVERSION).read_bytes()


def test_values_beyond_float32_are_a_clear_422() -> None:
    x, y = iris()
    model = LogisticRegression(max_iter=500).fit(x, y)
    store, local = publish(model, x, "iris", feature_names=IRIS_FEATURES)
    with onnx_version(local, store) as (converted, _):
        scorer = load_scorer(converted)
        with pytest.raises(InvalidInput, match="float32"):
            scorer.prepare({**SEED_IRIS_RECORD, "petal_width": 1e39}, b"")
        with pytest.raises(InvalidInput, match="'petal_width'"):
            scorer.prepare({**SEED_IRIS_RECORD, "petal_width": "wide"}, b"")
        assert scorer.predict(np.zeros((0, 4), dtype=np.float32)) == []
        one = scorer.prepare(SEED_IRIS_RECORD, b"").data
        two = scorer.prepare({"inputs": [[5.1, 3.5, 1.4, 0.2]] * 2}, b"").data
        batch = scorer.predict(scorer.concat([one, two]))
        assert [r["label"] for r in batch] == ["virginica", "setosa", "setosa"]


def test_only_the_converting_process_removes_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gunicorn forks its workers inside ``onnx_version``; a worker that leaves the block
    (a boot error exits through ``sys.exit``) must not delete the folder the others use.
    (A cache that cannot be written: the conversion lives in a temporary folder.)"""
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "iris")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SHIPML_CACHE", str(blocker / "cache"))
    with onnx_version(local, store) as (converted, _):
        pid = os.fork()
        if pid != 0:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert (converted.folder / GRAPH).is_file()  # the child's exit left it alone
    if pid == 0:
        os._exit(0)  # the child has just unwound the block, as a worker does
    assert not converted.folder.exists()  # the process that made it removed it


def test_a_checked_conversion_is_kept_and_reused(caplog: pytest.LogCaptureFixture) -> None:
    """The next start reuses the conversion and its check (keyed by the model's digest,
    the libraries and the tolerance); a damaged kept graph is converted again."""
    x, y = iris()
    store, local = publish(LogisticRegression(max_iter=500).fit(x, y), x, "iris")
    with onnx_version(local, store) as (first, first_check):
        pass
    assert (first.folder / GRAPH).is_file()  # kept after the block
    written = (first.folder / CONVERSION).stat().st_mtime_ns
    caplog.set_level("INFO", logger="shipml")
    with onnx_version(local, store) as (second, second_check):
        assert second.folder == first.folder and second_check == first_check
        assert load_scorer(second).predict(np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32))
    assert (first.folder / CONVERSION).stat().st_mtime_ns == written
    assert "reusing the ONNX conversion" in caplog.text
    with onnx_version(local, store, tolerance=1e-3) as (looser, _):
        assert looser.folder != first.folder  # another tolerance: another check
    (first.folder / GRAPH).write_bytes(b"damaged")
    caplog.clear()
    with onnx_version(local, store) as (again, check):
        assert check.differing == 0
        assert isinstance(load_scorer(again), OnnxScorer)
        assert again.folder == first.folder  # kept again, whole
    assert "reusing" not in caplog.text
