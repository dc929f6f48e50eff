"""Converting a version for ONNX Runtime, and proving it answers the same.

``shipml build --onnx`` and ``shipml serve --onnx`` run this on the host, where the
model's library, its converter and onnxruntime are installed (``pip install
'shipml[onnx]'`` for scikit-learn). Only flavours with a conversion take part
(:attr:`shipml.flavours.Flavour.onnx_conversion`: scikit-learn's, through skl2onnx):

1. the version's model is converted by its flavour into a graph with one float32 input
   (the schema's features, in order) and probabilities as a plain tensor;
2. the graph and scikit-learn both score the training sample that ``save_model`` kept
   in the store (plus the version's example); every row must get the same label and
   probabilities within :data:`TOLERANCE` (regression: within ``TOLERANCE * max(1,
   |value|)``), else the conversion is refused, naming how many rows differ and by how
   much;
3. the result is a model folder: the version's files, ``onnx/model.onnx`` and
   ``onnx/conversion.json`` (what it was converted from, with what, and the check), which
   :class:`~shipml.scoring.onnx.OnnxScorer` serves.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shipml import flavours
from shipml.errors import InvalidInput, ShipmlError
from shipml.flavours import Flavour, Loaded
from shipml.scoring.onnx import (
    CONVERSION,
    GRAPH,
    INSTALL_HINT,
    OnnxScorer,
    OnnxUnavailable,
    import_onnxruntime,
)
from shipml.scoring.schema import InputSchema
from shipml.scoring.versions import check_libraries
from shipml.store import LocalModel, Manifest, Store, library_versions, sha256_digest
from shipml.store.cache import TEMP_PREFIX, default_cache_dir
from shipml.store.paths import inside
from shipml.store.store import MANIFEST

log = logging.getLogger("shipml")
# Probabilities: absolute. ONNX Runtime computes in float32 (about 7 significant digits),
# so honest conversions differ by ~1e-7; 1e-4 is far from both that and a real error.
TOLERANCE = 1e-4
INPUT = "input"
WAY_OUT = "serve this version without --onnx"
CACHE_FORMAT = 1  # of a kept conversion's folder (conversion.json, onnx/model.onnx)


class ConversionError(ShipmlError):
    """The version cannot be converted: unsupported estimator, contract or schema."""

    code = "onnx_conversion_failed"


class ConversionMismatch(ShipmlError):
    """The converted graph does not answer like scikit-learn on the check rows."""

    code = "onnx_mismatch"


@dataclass(frozen=True)
class Check:
    """How the graph compared with scikit-learn."""

    rows: int
    differing: int  # rows whose answer differs (label, or a number beyond the tolerance)
    labels_differing: int
    largest_difference: float  # probabilities or predictions; 0 for label-only models
    tolerance: float


def describe_check(check: Check) -> str:
    """One line saying how the converted graph compared, for the user who asked for it."""
    return (
        f"ONNX Runtime: converted and checked on {check.rows} rows (largest difference from "
        f"scikit-learn {check.largest_difference:.2g}, tolerance {check.tolerance:g})"
    )


@contextmanager
def onnx_version(
    local: LocalModel, store: Store, tolerance: float = TOLERANCE
) -> Iterator[tuple[LocalModel, Check]]:
    """Convert and check ``local`` (a version of ``store``); yields the converted model
    and how it compared.

    A conversion that passed its check is kept in the local cache, keyed by the model's
    digest, the versions of the libraries that convert, run and check it, and the
    tolerance: a later start with the same key reuses it (converting and checking cost
    ~1 s at every start otherwise). Where the cache cannot be written, the conversion
    lives in a temporary folder for the ``with`` block, as before.
    """
    key = conversion_key(local, tolerance)
    reused = cached_conversion(local, key)
    if reused is not None:
        log.info("reusing the ONNX conversion of %s checked earlier (%s)", local.digest[:19], key)
        yield reused
        return
    sample = load_sample(store, local.manifest)
    owner = os.getpid()
    kept = _keep_folder(key)
    scratch = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=kept.parent if kept else None))
    try:
        converted, check = convert_version(local, sample, scratch / "model", tolerance)
        if kept is not None:
            if cached_conversion(local, key) is None:  # a damaged one would stay forever
                shutil.rmtree(kept, ignore_errors=True)
            with contextlib.suppress(OSError):  # another start kept it first: use that one
                scratch.rename(kept)
            done = cached_conversion(local, key)
            if done is not None:
                converted, check = done
        yield converted, check
    finally:
        # gunicorn forks its workers inside this block, and a worker that exits unwinds
        # through it too: only the process that made the folder may remove it.
        if os.getpid() == owner:
            shutil.rmtree(scratch, ignore_errors=True)


def conversion_key(local: LocalModel, tolerance: float) -> str:
    """What a kept conversion depends on: the model, the libraries, the tolerance."""
    from shipml import __version__

    basis = {
        "format": CACHE_FORMAT,
        "model_digest": local.digest,
        "libraries": library_versions(("onnx",)),
        "tolerance": tolerance,
        "shipml": __version__,
    }
    return sha256_digest(orjson.dumps(basis, option=orjson.OPT_SORT_KEYS)).split(":")[-1][:32]


def conversions_dir() -> Path:
    """Kept conversions, beside the models the cache holds (a name no model can have)."""
    return default_cache_dir() / ".onnx-conversions"


def _keep_folder(key: str) -> Path | None:
    folder = conversions_dir() / key
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder.parent, os.W_OK) else None


def cached_conversion(local: LocalModel, key: str) -> tuple[LocalModel, Check] | None:
    """The kept conversion for ``key``, if it is whole and its check passed."""
    folder = conversions_dir() / key / "model"
    try:
        record = orjson.loads((folder / CONVERSION).read_bytes())
        graph = (folder / GRAPH).read_bytes()
    except (OSError, orjson.JSONDecodeError):
        return None
    check = record.get("check") if isinstance(record, dict) else None
    if (
        not isinstance(check, dict)
        or record.get("model_digest") != local.digest
        or record.get("graph_digest") != sha256_digest(graph)
    ):
        return None
    try:
        result = Check(**check)
    except TypeError:
        return None
    if result.differing:
        return None
    return LocalModel(folder=folder, manifest=local.manifest, digest=local.digest), result


def load_sample(store: Store, manifest: Manifest) -> np.ndarray:
    """The training rows kept with the version; refuses when there are none."""
    data = store.read_sample(manifest)
    if data is None:
        raise ConversionError(
            f"{manifest.ref} keeps no training sample to check an ONNX conversion against "
            "(it was saved with sample_rows=0, from data that is not a numeric table, or by "
            "an older shipml). Train it again with shipml.save_model(..., training_data=X), "
            f"which keeps up to 500 rows in the store, or {WAY_OUT}."
        )
    sample = np.load(io.BytesIO(data), allow_pickle=False)
    return np.asarray(sample, dtype=np.float64)


def convert_version(
    local: LocalModel, sample: np.ndarray, target: Path, tolerance: float = TOLERANCE
) -> tuple[LocalModel, Check]:
    """Convert ``local``, check it on ``sample`` and lay the result out in ``target``."""
    manifest = local.manifest
    flavour, schema = _numeric_schema(manifest)
    if not manifest.model_file:
        raise ConversionError(f"{manifest.ref} names no model file in its manifest")
    rows = check_rows(manifest, schema, sample)
    check_libraries(manifest)
    loaded = flavour.load(local.folder, manifest)
    model = loaded.model
    features = getattr(model, "n_features_in_", len(schema.names))
    if features != len(schema.names):
        raise ConversionError(
            f"{manifest.ref} takes {features} features but its schema lists "
            f"{len(schema.names)}; it cannot be converted"
        )
    graph = to_onnx(flavour, model, len(schema.names), manifest.name)
    outputs = [output.name for output in graph.graph.output]
    classes = list(loaded.classes)
    probabilities = loaded.probabilities
    data = graph.SerializeToString()
    _lay_out(local, target, data)
    record: dict[str, Any] = {
        "model": manifest.ref,
        "model_digest": local.digest,
        "graph_digest": sha256_digest(data),
        "input": INPUT,
        "output": outputs[1] if probabilities else outputs[0],
        "task": "classification" if classes else "regression",
        "classes": classes,
        "probabilities": probabilities,
        "opsets": {entry.domain or "ai.onnx": entry.version for entry in graph.opset_import},
        "libraries": {
            name: version
            for name, version in library_versions().items()
            if name in ("scikit-learn", "skl2onnx", "onnxruntime", "numpy")
        },
    }
    (target / CONVERSION).write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    converted = LocalModel(folder=target, manifest=manifest, digest=local.digest)
    check = compare(loaded, OnnxScorer(converted), rows, schema, tolerance)
    if check.differing:
        raise ConversionMismatch(mismatch_message(manifest.ref, check, bool(classes)))
    record["check"] = asdict(check)
    (target / CONVERSION).write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    return converted, check


def to_onnx(flavour: Flavour, model: Any, features: int, name: str) -> Any:
    """The flavour's graph of ``model`` (an ``onnx.ModelProto``), probabilities as a tensor."""
    import_onnxruntime()  # fail before the (slow) conversion when the check cannot run
    try:
        return flavour.to_onnx(model, features, name)
    except ImportError as exc:
        raise OnnxUnavailable(
            f"converting to ONNX needs {exc.name or 'the converter'}: {INSTALL_HINT}"
        ) from None
    except Exception as exc:
        raise ConversionError(unsupported_message(model, exc)) from None


def unsupported_message(model: Any, exc: Exception) -> str:
    """Name the estimator skl2onnx stopped at (it may sit deep inside a pipeline)."""
    text = str(exc).strip()
    found = re.search(r"<class '([\w.]+)'>", text)
    culprit = found.group(1).rsplit(".", 1)[-1] if found else type(model).__name__
    where = "" if culprit == type(model).__name__ else f" (inside {type(model).__name__})"
    detail = (text.splitlines() or [type(exc).__name__])[0].rstrip(".")
    if "shape calculator" in detail or "converter" in detail:
        detail = "skl2onnx has no converter for it"
    return f"cannot convert {culprit}{where} to ONNX: {detail}. {WAY_OUT.capitalize()}."


def check_rows(manifest: Manifest, schema: InputSchema, sample: np.ndarray) -> np.ndarray:
    """The rows both engines score: the training sample and the version's example."""
    if sample.ndim != 2 or sample.shape[1] != len(schema.names):
        raise ConversionError(
            f"the training sample of {manifest.ref} has shape {sample.shape}, not "
            f"(rows, {len(schema.names)}); train the version again"
        )
    rows = [sample]
    if isinstance(manifest.example, dict):
        try:
            rows.append(schema.matrix([manifest.example], rows=False).astype(np.float64))
        except InvalidInput:
            log.warning("the example of %s does not fit its schema; not checked", manifest.ref)
    return np.concatenate(rows)


def compare(
    loaded: Loaded, scorer: OnnxScorer, rows: np.ndarray, schema: InputSchema, tolerance: float
) -> Check:
    """Score ``rows`` with the model and with the graph; count the answers that differ."""
    data = schema.model_input(rows, loaded.frame)
    got = scorer.run(rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = np.asarray(loaded.predict(data))
        if loaded.probabilities:
            expected = expected.astype(np.float64)
    for warning in caught:
        log.info("scoring the check rows with the model: %s", warning.message)
    if got.shape != expected.shape:
        raise ConversionMismatch(
            f"the ONNX graph answers with shape {got.shape} where scikit-learn answers "
            f"{expected.shape}; {WAY_OUT}"
        )
    if scorer.task == "classification" and got.ndim == 2 and expected.ndim == 2:
        difference = np.abs(got.astype(np.float64) - expected).max(axis=1)
        labels = got.argmax(axis=1) != expected.argmax(axis=1)
        bad = labels | (difference > tolerance)
    elif scorer.task == "classification":  # labels only
        labels = got.astype(object) != expected.astype(object)
        difference, bad = np.zeros(len(rows)), labels
    else:
        values = expected.astype(np.float64)
        difference = np.abs(got.astype(np.float64) - values).reshape(len(rows), -1).max(axis=1)
        scale = np.maximum(1.0, np.abs(values).reshape(len(rows), -1).max(axis=1))
        labels = np.zeros(len(rows), dtype=bool)
        bad = difference > tolerance * scale
    return Check(
        rows=len(rows),
        differing=int(bad.sum()),
        labels_differing=int(labels.sum()),
        largest_difference=float(difference.max()) if len(rows) else 0.0,
        tolerance=tolerance,
    )


def mismatch_message(ref: str, check: Check, classifier: bool) -> str:
    what = "probability" if classifier else "prediction"
    labels = f"{check.labels_differing} labels differ; " if classifier else ""
    return (
        f"the ONNX conversion of {ref} does not answer like scikit-learn on "
        f"{check.differing} of {check.rows} check rows ({labels}largest {what} difference "
        f"{check.largest_difference:.3g}, tolerance {check.tolerance:g}). ONNX Runtime "
        f"computes in float32 where scikit-learn uses float64: {WAY_OUT}."
    )


def _numeric_schema(manifest: Manifest) -> tuple[Flavour, InputSchema]:
    flavour = flavours.of_manifest(manifest)
    if flavour is None:
        raise ConversionError(
            f"--onnx converts zero-code models; {manifest.ref} is served by its "
            f"own scoring code ({manifest.contract} contract), which ONNX cannot replace"
        )
    if not flavour.onnx_conversion:
        raise ConversionError(
            f"--onnx has no conversion for {flavour.name} models ({manifest.ref}); {WAY_OUT}"
        )
    if manifest.input_schema is None:
        raise ConversionError(f"{manifest.ref} has no input schema; it cannot be converted")
    schema = InputSchema(manifest.input_schema)
    if not schema.numeric:
        raise ConversionError(
            f"--onnx takes models whose features are all numbers; {manifest.ref} takes "
            f"{schema.describe()}. {WAY_OUT.capitalize()}."
        )
    return flavour, schema


def _lay_out(local: LocalModel, target: Path, graph: bytes) -> None:
    """The version's own files and manifest (verified as ever at load), plus the graph."""
    target.mkdir(parents=True)
    for relpath in [*local.manifest.files, MANIFEST]:
        destination = target / relpath if relpath == MANIFEST else inside(target, relpath)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local.folder / relpath, destination)
    (target / GRAPH).parent.mkdir(parents=True, exist_ok=True)
    (target / GRAPH).write_bytes(graph)
