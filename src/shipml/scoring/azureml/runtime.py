"""The process a scoring script runs in, set up as Microsoft's server sets it up.

Before the script is imported:

- ``AZUREML_MODEL_DIR``: a folder holding the registered model files, and only them, at
  their relative paths (``model.pkl``, ``model/sklearn_regression_model.pkl``, ...), as
  Azure ML's model folder does: scripts list or glob it (``models_files[0]``, "more than
  one model"), so the script, its code and shipml's manifest must not appear there. It is
  a per-process folder of links to the version's files (:func:`model_view`), whose path
  ends in ``azureml-models/NAME/VERSION`` as Azure's does (AutoML's scoring files and
  MLOps templates read the model's name and version from it);
- ``AZUREML_ENTRY_SCRIPT``: the script's absolute path (what ``azmlinfsrv
  --entry_script`` sets); ``AML_APP_ROOT``: the version's folder, also the working
  directory; ``AZUREML_SOURCE_DIRECTORY``: the folder holding the script (the same
  folder: a score.py is stored beside the registered files, as in an Azure ML code
  folder); it is appended to ``sys.path``, as Microsoft's server does;
- the script is imported as the module ``entry_module``, Microsoft's name, so that
  ``inference_schema`` registers its decorators under the same key.

The first exception from the import or from ``init()`` becomes a :class:`LoadFailed`
that carries the script's own traceback, the missing path of a ``FileNotFoundError``
and a listing of ``AZUREML_MODEL_DIR`` (Microsoft's server logs the same listing).
It is final: the script is not imported again, so nothing registered by the first
attempt can hide the real error behind a second one.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from shipml.errors import LoadFailed, ProjectError
from shipml.scoring.azureml import raw
from shipml.scoring.azureml.script_check import V1_MODELS, get_model_path_line

log = logging.getLogger("shipml")
MODULE_NAME = "entry_module"
LISTING_LIMIT = 200  # lines of the model folder listing, as Microsoft's server logs


def prepare_process(
    model_dir: Path,
    script: Path,
    model_files: Sequence[str] | None = None,
    name_version: tuple[str, int] = ("model", 1),
) -> None:
    """Environment, ``sys.path`` and working directory, laid out like a deployment.

    Azure ML puts the app root (``AML_APP_ROOT``) above the uploaded code folder
    (``AZUREML_SOURCE_DIRECTORY``) and the server appends both to ``sys.path``; here the
    version's folder is the app root (it holds the registered files and the script), so
    relative paths such as ``outputs/model.pkl`` open from the registered files, and so do
    paths relative to the script's own file. ``model_files`` (the manifest's
    ``scoring.model_files``) are what ``AZUREML_MODEL_DIR`` shows; a version registered
    before shipml recorded them shows its whole folder.
    """
    code = script.parent
    shown = v1_model_dir(model_dir, script)
    if shown is None:
        shown = str(
            model_dir if model_files is None else model_view(model_dir, model_files, name_version)
        )
    os.environ["AZUREML_MODEL_DIR"] = shown
    os.environ["SHIPML_MODEL_DIR"] = str(model_dir)
    os.environ["AZUREML_ENTRY_SCRIPT"] = str(script)
    os.environ["AML_APP_ROOT"] = str(model_dir)
    os.environ["AZUREML_SOURCE_DIRECTORY"] = str(code)
    for folder in (model_dir, code):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))  # appended, as Microsoft does: installed packages win
    os.chdir(model_dir)


_VIEWS: dict[tuple[str, tuple[str, ...]], Path] = {}


def model_view(
    model_dir: Path, model_files: Sequence[str], name_version: tuple[str, int] = ("model", 1)
) -> Path:
    """A fresh folder showing ``model_files`` of ``model_dir`` at the same paths, only them.

    Real folders (``os.walk`` and ``glob("**")`` do not enter linked ones) holding links,
    not copies: a model of gigabytes costs nothing more, and every file is still the one
    whose digest the store checked. Hard links where the filesystem allows, so that a
    file resolves inside the view (MLflow's loader refuses a model file whose resolved
    path leaves the folder it was given); symbolic links otherwise. Its path ends in
    ``azureml-models/NAME/VERSION``, the version's own, as Azure ML's does. The view lives
    in the temporary directory (writable in images, an emptyDir on Kubernetes' read-only
    root) and is removed when the worker exits. A second load of the same version in the
    process (a retry, a test) gets the same folder, so its messages name the same paths.
    """
    key = (str(model_dir), tuple(model_files))
    known = _VIEWS.get(key)
    if known is not None and known.is_dir():
        return known
    top = Path(tempfile.mkdtemp(prefix="shipml-azureml-"))
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    name, version = name_version
    view = _VIEWS[key] = top / "azureml-models" / name / str(version)
    view.mkdir(parents=True)
    for relpath in model_files:
        target = view / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(model_dir / relpath, target)
        except OSError:  # another filesystem, or hard links not allowed
            target.symlink_to(model_dir / relpath)
    return view


def v1_model_dir(model_dir: Path, script: Path) -> str | None:
    """``azureml-models/NAME/VERSION``, relative, for a v1 ``Model.get_model_path`` script
    whose model was registered in that layout (v1 deployments set it so; scripts such as
    MLOpsPython's take the model's name from it)."""
    cache = model_dir / V1_MODELS
    if get_model_path_line(script) is None or not cache.is_dir():
        return None
    found = sorted(path for path in cache.glob("*/*") if path.is_dir())
    if len(found) == 1:
        return found[0].relative_to(model_dir).as_posix()
    return V1_MODELS


def _forget_schemas() -> None:
    """Drop what an earlier ``entry_module`` registered with inference_schema.

    inference_schema keeps the decorated functions' schemas in module-level dicts keyed
    by ``module.function``; importing a second script (or the same one again) in one
    process would otherwise fail with "output schema already defined".
    """
    registry = sys.modules.get("inference_schema.schema_util")
    for name in ("__functions_schema__", "__versions__"):
        table = getattr(registry, name, None)
        if isinstance(table, dict):
            for key in [k for k in table if k.startswith(MODULE_NAME + ".")]:
                del table[key]


def import_script(
    script: Path,
    model_dir: Path,
    model_files: Sequence[str] | None = None,
    name_version: tuple[str, int] = ("model", 1),
) -> ModuleType:
    """Import the scoring script; a failure raises :class:`LoadFailed`."""
    prepare_process(model_dir, script, model_files, name_version)
    raw.install()
    raw.reset_rawhttp()
    _forget_schemas()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, script)
    if spec is None or spec.loader is None:
        raise ProjectError(f"cannot import the scoring script {script}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise load_failed(exc, "while importing it", script, model_dir) from None
    return module


def call_init(init: Callable[[], Any], script: Path, model_dir: Path) -> None:
    try:
        init()
    except (Exception, SystemExit) as exc:
        raise load_failed(exc, "in init()", script, model_dir) from None


def load_failed(exc: BaseException, stage: str, script: Path, model_dir: Path) -> LoadFailed:
    """One clear line for people, the traceback and the folder listing for the log."""
    model_dir = Path(os.environ.get("AZUREML_MODEL_DIR") or model_dir)  # what the script saw
    where = _user_frame(exc.__traceback__, script)
    reason = f"{type(exc).__name__}: {exc}"
    message = f"{script.name} failed {stage}{where}: {reason}"
    detail: dict[str, Any] = {
        "traceback": "".join(traceback.format_exception(exc)),
        "model_dir": str(model_dir),
        "model_files": list(_listing(model_dir)),
    }
    if isinstance(exc, FileNotFoundError) and exc.filename:
        missing = str(exc.filename)
        detail["missing"] = missing
        registered = ", ".join(_files(model_dir)[:20]) or "nothing"
        message += (
            f". {missing} does not exist; AZUREML_MODEL_DIR ({model_dir}) holds: {registered}. "
            "Register the file at that relative path (save_model(files=[...]) or model: "
            "in shipml.yaml) or fix the path in the script"
        )
    return LoadFailed(message, detail)


def _user_frame(tb: TracebackType | None, script: Path) -> str:
    """`` (score.py line 12, in init)`` for the deepest frame inside the script."""
    found = ""
    for frame, line in traceback.walk_tb(tb):
        if Path(frame.f_code.co_filename) == script:
            found = f" ({script.name} line {line}, in {frame.f_code.co_name})"
    return found


def _files(model_dir: Path) -> list[str]:
    if not model_dir.is_dir():
        return []
    return sorted(
        path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*") if path.is_file()
    )


def _listing(folder: Path, depth: int = 0) -> Any:
    """The folder as an indented tree, at most :data:`LISTING_LIMIT` lines."""
    lines: list[str] = []

    def walk(path: Path, level: int) -> None:
        if len(lines) >= LISTING_LIMIT:
            return
        lines.append("    " * level + path.name + ("/" if path.is_dir() else ""))
        if path.is_dir():
            for child in sorted(path.iterdir()):
                walk(child, level + 1)

    if folder.is_dir():
        walk(folder, depth)
    return lines
