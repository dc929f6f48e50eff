"""The Azure ML scoring contract: ``score.py`` with ``init()`` and ``run(raw_data)``.

An existing Azure ML entry script runs unchanged: ``AZUREML_MODEL_DIR`` names the
folder holding the model's files before the script is imported, ``init()`` is called
once, and ``run()`` receives the request body as the string Azure ML passes. Whatever
``run()`` returns is the response. When the model declares an input schema, requests
are checked against it first, so a typo gets a 422 instead of a traceback from user code.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from shipml.errors import InvalidInput, ProjectError
from shipml.scoring.base import Prepared, split_payload
from shipml.scoring.schema import InputSchema
from shipml.store.manifest import Manifest


def load_module(script: Path, model_dir: Path) -> ModuleType:
    """Import a user's scoring script the way Azure ML does."""
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    os.environ["SHIPML_MODEL_DIR"] = str(model_dir)
    sys.path.insert(0, str(script.parent))  # the script may import its neighbours
    spec = importlib.util.spec_from_file_location(f"shipml_user_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise ProjectError(f"cannot import the scoring script {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AzureMLScorer:
    contract = "azureml"
    batchable = False
    output_schema: dict[str, Any] | None = None

    def __init__(self, model_dir: Path, manifest: Manifest) -> None:
        script = model_dir / manifest.scoring["script"]
        module = load_module(script, model_dir)
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise ProjectError(
                    f"{script.name} must define {name}(): init() loads the model once, "
                    "run(raw_data) scores one request"
                )
        module.init()
        self._run = module.run
        schema = manifest.input_schema
        self.schema = InputSchema(schema) if schema else None

    def prepare(self, payload: Any, body: bytes) -> Prepared:
        count = 1
        if self.schema is not None:
            items, _, rows = split_payload(payload)
            self.schema.matrix(items, rows)  # validation only; run() gets the raw body
            count = len(items)
        return Prepared(body.decode("utf-8"), count, True)

    def predict(self, data: Any) -> Any:
        return self._run(data)

    def concat(self, parts: list[Any]) -> Any:
        raise InvalidInput("score.py models are not batchable")
