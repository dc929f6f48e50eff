"""Scoring contracts: how a request becomes a prediction (DESIGN §2)."""

from shipml.scoring.base import Prepared, Scorer, split_payload
from shipml.scoring.loader import load_scorer, model_from_file
from shipml.scoring.schema import InputSchema, infer_schema
from shipml.scoring.versions import check_libraries

__all__ = [
    "InputSchema",
    "Prepared",
    "Scorer",
    "check_libraries",
    "infer_schema",
    "load_scorer",
    "model_from_file",
    "split_payload",
]
