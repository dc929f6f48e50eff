"""A store written by shipml before the hardening (main at 7b7d057) still reads.

The files are written here byte for byte the way that code wrote them: blobs and
manifests with mode 0600 (tempfile.mkstemp), manifests as orjson's indented dump of the
dataclass in its field order, aliases as ``{"version":N}``, cache folders with and
without their ``manifest.json``. Nothing in the layout or the manifest format changed.
"""

from __future__ import annotations

import io
from pathlib import Path

import joblib
import numpy as np
import orjson
import pytest
from sklearn.linear_model import LogisticRegression

from shipml.scoring import load_scorer
from shipml.store import Store, parse_reference
from tests.store_support import MAIN_FIELDS, digest_of, write_version

FEATURES = ["a", "b"]


@pytest.fixture
def old_store(tmp_path: Path) -> tuple[Store, dict[str, bytes]]:
    x = np.random.default_rng(0).random((40, 2))
    y = np.where(x[:, 0] > 0.5, "high", "low")
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression().fit(x, y), buffer)
    sample = io.BytesIO()
    np.save(sample, x[:10], allow_pickle=False)
    store = Store(str(tmp_path / "old"))
    store.backend.write("blobs/sha256/" + digest_of(sample.getvalue())[7:], sample.getvalue())
    files = {"model.joblib": buffer.getvalue(), "env/requirements.txt": b"scikit-learn\n"}
    schema = {
        "type": "object",
        "properties": {name: {"type": "number"} for name in FEATURES},
        "required": FEATURES,
        "additionalProperties": False,
    }
    raws = {
        "m:1": write_version(
            store,
            "m",
            1,
            files,
            contract="sklearn",
            framework={"name": "scikit-learn", "version": "1.5.0"},
            libraries={"python": "3.11.7"},
            input_schema=schema,
            example={"a": 0.9, "b": 0.1},
            metrics={"accuracy": 1.0},
            data={
                "sha256": "0" * 64,
                "rows": 40,
                "sample": {"digest": digest_of(sample.getvalue()), "size": 8, "rows": 10},
            },
            source={"commit": "abc", "dirty": False},
            environment={"file": "env/requirements.txt", "requirements": ["scikit-learn"]},
        ),
        "s:1": write_version(
            store,
            "s",
            1,
            {"model.joblib": b"any", "code/score.py": b"def init(): ...\ndef run(d): ...\n"},
            contract="azureml",
            scoring={"script": "code/score.py", "class": None},
        ),
    }
    store.backend.write("models/m/aliases/production", orjson.dumps({"version": 1}))
    for path in (tmp_path / "old").rglob("*"):
        if path.is_file():
            path.chmod(0o600)  # what mkstemp made
    return store, raws


def test_the_old_format_is_the_format_today(old_store: tuple[Store, dict[str, bytes]]) -> None:
    store, raws = old_store
    manifest, digest = store.manifest("m", 1)
    assert list(orjson.loads(raws["m:1"])) == list(MAIN_FIELDS)
    assert digest == digest_of(raws["m:1"])  # the model digest has not changed
    assert manifest.model_file == "model.joblib" and manifest.files["model.joblib"].size > 0


def test_an_old_store_lists_resolves_fetches_and_serves(
    old_store: tuple[Store, dict[str, bytes]], tmp_path: Path
) -> None:
    store, _ = old_store
    assert store.models() == ["m", "s"]
    assert store.aliases("m") == {"production": 1}
    local = store.fetch(parse_reference("m@production"), tmp_path / "cache")
    scorer = load_scorer(local)
    assert scorer.predict(scorer.prepare([{"a": 0.9, "b": 0.1}], b"").data)
    assert store.read_sample(local.manifest) is not None
    assert store.fetch(parse_reference("s:1"), tmp_path / "cache").manifest.contract == "azureml"
    store.set_alias("m", "staging", 1)
    assert store.remove("s", 1) == []
    assert store.versions("m") == [1]


def test_old_cache_folders_are_used_or_fetched_again(
    old_store: tuple[Store, dict[str, bytes]], tmp_path: Path
) -> None:
    store, raws = old_store
    cache = tmp_path / "cache"
    folder = store.fetch(parse_reference("m:1"), cache).folder
    (folder / "manifest.json").unlink()  # a cache entry from before manifests were kept
    folder.chmod(0o700)  # and made by mkdtemp
    again = store.fetch(parse_reference("m:1"), cache)
    assert again.folder == folder
    assert (folder / "manifest.json").read_bytes() == raws["m:1"]
