"""The batch class contract: a class with ``setup()`` and ``predict(batch)``.

For custom code that wants whole batches: ``setup()`` runs once per worker (it may take
the model folder as its one argument), ``predict`` receives a list of validated records
and returns one result per record, in order::

    class Predictor:
        def setup(self, model_dir):
            self.model = joblib.load(model_dir / "model.joblib")

        def predict(self, batch: list[dict]) -> list[dict]:
            return [{"length": len(r["text"])} for r in batch]
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from shipml.errors import ModelError, ProjectError
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import Manifest
from shipml.store.paths import inside


def load_module(script: Path, model_dir: Path) -> ModuleType:
    """Import the user's predictor module, its folder first on ``sys.path``."""
    os.environ["SHIPML_MODEL_DIR"] = str(model_dir)
    sys.path.insert(0, str(script.parent))  # the module may import its neighbours
    spec = importlib.util.spec_from_file_location(f"shipml_user_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ProjectError(f"cannot import the scoring script {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PredictorScorer:
    contract = "class"
    batchable = True
    output_schema: dict[str, Any] | None = None

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        script = inside(model_dir, manifest.scoring["script"])
        class_name = manifest.scoring.get("class") or "Predictor"
        module = load_module(script, model_dir)
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls) or not callable(getattr(cls, "predict", None)):
            raise ProjectError(
                f"{script.name} must define a class {class_name} with a predict(batch) method"
            )
        self.instance: Any = cls()
        setup = getattr(self.instance, "setup", None)
        if callable(setup):
            takes_dir = len(inspect.signature(setup).parameters) >= 1
            setup(model_dir) if takes_dir else setup()
        schema = manifest.input_schema
        self.schema = InputSchema(schema) if schema else None

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        items, single, rows = split_payload(payload)
        if self.schema is not None:
            self.schema.matrix(items, rows)
            if rows:
                items = [dict(zip(self.schema.names, row, strict=True)) for row in items]
        return Prepared(items, len(items), single)

    def concat(self, parts: list[Any]) -> Any:
        return [item for part in parts for item in part]

    def predict(self, data: Any) -> list[Any]:
        results = list(self.instance.predict(data))
        if len(results) != len(data):
            raise ModelError(
                f"predict() returned {len(results)} results for a batch of {len(data)}; "
                "it must return one result per record, in order"
            )
        return results
