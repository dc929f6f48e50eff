"""What a scoring script's source says about it, read without running it.

Two facts are read from the syntax tree of ``score.py``:

- the packages its imports need that a serve image must carry even when the project's
  requirements forget them, as Microsoft's server would bring them: ``inference-schema``
  (a dependency of ``azureml-inference-server-http``) and werkzeug for the
  ``azureml.contrib.services`` modules shipml provides;
- whether it calls azureml-core's v1 ``Model.get_model_path(...)``: refused, with the
  line to change (see docs/scoring.md: the v1 model cache ``azureml-models/NAME/VERSION``
  is not laid out; ``AZUREML_MODEL_DIR`` is).
"""

from __future__ import annotations

import ast
from pathlib import Path

from shipml.errors import ProjectError

# import prefix -> the PyPI distribution an image then needs
NEEDS = {
    "inference_schema": "inference-schema",
    "azureml.contrib.services": "werkzeug",
}


def _tree(script: Path) -> ast.Module:
    try:
        return ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    except SyntaxError as exc:
        raise ProjectError(f"{script.name} is not valid Python: {exc}") from None


def imported_modules(script: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(_tree(script)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def script_packages(script: Path) -> list[str]:
    """The distributions the script's imports need beyond its own requirements."""
    modules = imported_modules(script)
    return sorted(
        {
            package
            for prefix, package in NEEDS.items()
            if any(m == prefix or m.startswith(prefix + ".") for m in modules)
        }
    )


def check_script(script: Path) -> None:
    """Refuse a script that looks its model up with azureml-core's ``Model.get_model_path``."""
    if not any(m.startswith("azureml.core") for m in imported_modules(script)):
        return
    for node in ast.walk(_tree(script)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_model_path"
        ):
            raise ProjectError(
                f"{script.name} line {node.lineno} calls Model.get_model_path(), azureml-core's "
                "v1 model cache lookup, which shipml does not emulate. Load the file from "
                "AZUREML_MODEL_DIR instead, e.g. "
                "os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.pkl') for a file "
                "registered as model.pkl (see docs/scoring.md)"
            )
