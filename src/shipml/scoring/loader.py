"""Turn a verified local model folder into a :class:`~shipml.scoring.base.Scorer`.

Before any model file is opened, the library versions the model was trained with are
compared with the ones installed (:mod:`shipml.scoring.versions`). Pickles
only load from a folder whose digests were just verified against its manifest
(:func:`shipml.store.Store.fetch`). Which flavour loads a zero-code model is the
manifest's contract (:func:`shipml.flavours.of_manifest`): the loader names none.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shipml import flavours
from shipml.errors import ProjectError, ShipmlError
from shipml.flavours.pickling import is_pickle_file, load_pickle
from shipml.scoring.azureml import AzureMLScorer
from shipml.scoring.base import Scorer
from shipml.scoring.mlflow_model import mlflow_model
from shipml.scoring.model import ModelScorer
from shipml.scoring.nulls import with_nulls
from shipml.scoring.onnx import OnnxScorer, is_converted
from shipml.scoring.predictor import PredictorScorer
from shipml.scoring.schema import infer_schema
from shipml.scoring.versions import check_libraries
from shipml.store.manifest import FileEntry, Manifest, sha256_digest
from shipml.store.reference import MLMODEL
from shipml.store.store import LocalModel

log = logging.getLogger("shipml")


def load_scorer(local: LocalModel) -> Scorer:
    """Load the model in ``local`` with its scoring contract.

    A folder that holds a checked ONNX conversion (``shipml build --onnx``, ``shipml serve
    --onnx``) is served through ONNX Runtime: the graph needs neither the model's library
    nor its files, so their versions are not checked.
    """
    manifest = local.manifest
    flavour = flavours.of_manifest(manifest)
    if flavour is not None and is_converted(local.folder):
        return OnnxScorer(local)
    check_libraries(manifest)
    if manifest.contract == "azureml":
        return AzureMLScorer(local.folder, manifest)
    if manifest.contract == "class":
        return PredictorScorer(local.folder, manifest)
    if flavour is not None:
        return ModelScorer(flavour.load(local.folder, manifest), manifest, flavour)
    raise ProjectError(f"{manifest.ref} uses an unknown scoring contract {manifest.contract!r}")


def load_model_file(path: Path) -> Any:
    """Unpickle a model file, logging (not raising) the library's version warnings."""
    return load_pickle(path)


def model_from_file(path: Path, probe: bool = True) -> LocalModel:
    """A :class:`LocalModel` for a bare model file given on the command line.

    There is no store manifest to check it against, so the file is the user's explicit
    choice: only pass files you trust (pickles run code when loaded). ``probe=False``
    skips the calls that find the fields taking ``null``: for the check ``shipml serve``
    makes before it forks its workers, where a model's first call would start OpenMP's
    threads in the master (serving/preload.py says why that must not happen).
    """
    if path.name == MLMODEL:  # an MLflow model folder
        return mlflow_model(path, probe)
    data = path.read_bytes()
    flavour, model = flavours.from_file(path)
    schema = infer_schema(model_fields=flavour.feature_types(model))
    if schema is None:
        raise ProjectError(
            f"{path} does not say which features it takes (no feature_names_in_ or "
            "n_features_in_); register it with shipml.save_model(..., training_data=...)"
        )
    if probe:  # null where the model takes a missing value, as for a saved model
        schema = with_nulls(flavour.wrap(model, flavour.takes_frame(model, None)), schema, None)

    manifest = Manifest(
        name=path.stem.lower(),
        version=0,
        created="",
        contract=flavour.name,
        files={path.name: FileEntry(digest=sha256_digest(data), size=len(data))},
        model_file=path.name,
        input_schema=schema,
        flavour={"name": flavour.name, "frame": flavour.takes_frame(model, None)},
    )
    return LocalModel(folder=path.parent, manifest=manifest, digest=sha256_digest(data))


def open_model_file(path: Path, probe: bool = True) -> LocalModel:
    """A bare model file (``shipml serve model.joblib``) loaded now, so that a file that
    is not a model is one clear error at once rather than one per worker."""
    own = sorted({suffix for flavour in flavours.REGISTRY for suffix in flavour.file_suffixes})
    what = (
        "a model file is a fitted model saved with joblib.dump or pickle (.joblib, .pkl, "
        f".pickle, .sav, or compressed: .pkl.gz …), skops (.skops), a format a flavour "
        f"reads ({', '.join(own)}) or an MLflow model folder (with its {MLMODEL} file); a "
        "model in the store is named NAME, NAME:N or NAME@ALIAS"
    )
    if not is_pickle_file(path) and path.suffix not in own and path.name != MLMODEL:
        raise ShipmlError(f"{path} is not a model file: {what}")
    try:
        return model_from_file(path, probe)
    except ShipmlError:
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ShipmlError(
            f"{path} is not a model file shipml can load ({type(exc).__name__}: {reason}); {what}"
        ) from None
