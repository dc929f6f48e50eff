"""What a scoring script's source says about it, read without running it.

Two facts are read from the syntax tree of ``score.py``:

- the packages its imports need that a serve image must carry even when the project's
  requirements forget them, as Microsoft's server would bring them: ``inference-schema``
  (a dependency of ``azureml-inference-server-http``) and werkzeug for the
  ``azureml.contrib.services`` modules shipml provides;
- whether it calls azureml-core's v1 ``Model.get_model_path(...)``, which looks in
  ``azureml-models/NAME/VERSION/``: such a script needs its model registered in that
  layout, or it is refused with the line to change.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterable
from pathlib import Path

from shipml.errors import ProjectError

V1_MODELS = "azureml-models"  # azureml-core v1's model cache, under the app root
# import prefix -> the PyPI distribution an image then needs
NEEDS = {
    "inference_schema": "inference-schema",
    "azureml.contrib.services": "werkzeug",
    "azureml.core": "azureml-core",
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
    """The distributions the script's imports (and those of the code stored with it, in
    its folder) need beyond its own requirements."""
    modules = imported_modules(script)
    for source in sorted(script.parent.rglob("*.py")):
        if source != script:
            with contextlib.suppress(ProjectError, OSError, UnicodeDecodeError):
                modules |= imported_modules(source)  # a helper that does not parse is its own
    return sorted(
        {
            package
            for prefix, package in NEEDS.items()
            if any(m == prefix or m.startswith(prefix + ".") for m in modules)
        }
    )


def get_model_path_line(script: Path) -> int | None:
    """The line of the script's first ``Model.get_model_path(...)`` call, if any."""
    if not any(m.startswith("azureml.core") for m in imported_modules(script)):
        return None
    lines = [
        node.lineno
        for node in ast.walk(_tree(script))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_model_path"
    ]
    return min(lines) if lines else None


def check_script(script: Path, registered: Iterable[str]) -> None:
    """Refuse a v1 ``Model.get_model_path`` script whose model is not in v1's layout.

    azureml-core looks in ``$AML_APP_ROOT/azureml-models/NAME/VERSION/`` (one file or
    folder there). A model registered in that layout (``model: azureml-models/``) is
    served with ``AZUREML_MODEL_DIR=azureml-models/NAME/VERSION``, as v1 deployments set
    it; any other layout would fail inside ``init()``, so it is refused up front.
    """
    line = get_model_path_line(script)
    if line is None or any(path.startswith(V1_MODELS + "/") for path in registered):
        return
    raise ProjectError(
        f"{script.name} line {line} calls Model.get_model_path(), azureml-core's v1 lookup "
        f"in {V1_MODELS}/NAME/VERSION/. Either register the model in that layout (a "
        f"folder {V1_MODELS}/NAME/VERSION/FILE, then model: {V1_MODELS}/ in shipml.yaml; "
        "azureml-core must be in the environment), or load the file from AZUREML_MODEL_DIR: "
        "os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.pkl') for a file registered "
        "as model.pkl (see docs/scoring.md)"
    )
