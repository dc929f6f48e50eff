"""Publishing a staged model: the hand-over between ``save_model`` and the store.

``save_model`` (:mod:`shipml.saving`) writes the model files and a small ``staged.json``
into a staging folder; this module turns that folder, plus the project's scoring code
and environment file, into the next version in a store. ``shipml train``
(:mod:`shipml.train`) and ``save_model`` outside a training run both end here, so
neither needs the other.
"""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import orjson

from shipml.code_files import code_files
from shipml.errors import TrainingError
from shipml.flavours.pickling import PICKLE_FILE
from shipml.model_files import RESERVED, check_project_paths, collect, copy_into
from shipml.project import Project, find_project, load_project, read_requirements, store_url
from shipml.scoring.azureml.script_check import check_script
from shipml.source import git_source
from shipml.store import Manifest, Store, library_versions

STAGED = "staged.json"
NO_MODEL = (
    "save_model(None, ...) saved no model: only a project with a scoring script "
    "(scoring: score.py in shipml.yaml) loads its own files; pass the fitted model"
)


def publish_staged(
    folder: Path, project_root: Path | None, store: Store | None = None
) -> tuple[Manifest, str]:
    """Publish what ``save_model`` staged in ``folder``, with the project's code."""
    staged_file = folder / STAGED
    if not staged_file.is_file() and not _declares_model(project_root):
        raise TrainingError(
            "the training script finished without saving a model: call "
            "shipml.save_model(model, training_data=X, ...) at its end"
        )
    root = project_root or find_project()
    project = load_project(root) if root else None
    if project is not None and project.model:
        add_project_files(folder, project)
    staged = orjson.loads(staged_file.read_bytes())
    name = staged.get("name") or (project.name if project else None)
    if not name:
        raise TrainingError("save_model needs name=... when no shipml.yaml is around")
    manifest = staged_manifest(staged, name, project.contract if project else None)
    contract = manifest.contract
    if manifest.model_file is None and project is not None and project.contract is None:
        raise TrainingError(NO_MODEL)
    if contract == "azureml" and not staged.get("schema_from_example"):
        manifest.input_schema, manifest.example = None, None
    target = store or Store(store_url(None, project))
    for key in ("sample", "reference"):  # blobs the manifest names, not files served
        kept = staged.get(key)
        if kept:
            entry = target.put_blob((folder / kept["file"]).read_bytes())
            manifest.data = {
                **manifest.data,
                key: {"digest": entry.digest, "size": entry.size, "rows": kept["rows"]},
            }
    if staged.get("profile"):
        manifest.data = {**manifest.data, "profile": staged["profile"]}
    files = {model: folder / model for model in manifest.flavour.get("files", [])}
    files.update({extra: folder / extra for extra in staged["files"]})
    registered = sorted(files)  # the model files alone, before any code joins them
    if project is not None:
        _add_project(manifest, files, project, [*files, *staged["files"]], registered)
    return target.publish(manifest, files)


def _add_project(
    manifest: Manifest,
    files: dict[str, Path],
    project: Project,
    names: list[str],
    registered: list[str],
) -> None:
    """Add the project's scoring code, environment file and commit to a version."""
    contract = manifest.contract
    if project.scoring is not None:
        if contract == "azureml":  # refuse now what could not be served later
            check_script(project.scoring, names)
        # A score.py sits at the top of the version folder, beside the registered
        # files, as in an Azure ML code folder: paths relative to its own file work.
        # The code it imports (or its whole folder) comes with it (shipml.code_files).
        prefix = "" if contract == "azureml" else "code/"
        script = prefix + project.scoring.name
        for relpath, source in code_files(project.scoring, project.root).items():
            stored = prefix + relpath
            if not prefix and relpath.split("/")[0] in RESERVED:
                raise TrainingError(
                    f"the scoring code's {source.relative_to(project.root)} would be "
                    f"stored as {relpath!r}, a name that is shipml's own; rename it"
                )
            if stored in files and not filecmp.cmp(files[stored], source, shallow=False):
                raise TrainingError(
                    f"the registered model file {stored} and the scoring code's "
                    f"{source.relative_to(project.root)} would land at the same path in "
                    "the version; rename one of them"
                )
            files[stored] = source
        manifest.scoring = {"script": script, "class": project.scoring_class}
        if contract == "azureml":
            # What AZUREML_MODEL_DIR shows the script: the registered files only, as in
            # Azure ML, where the model folder holds no code (scoring.azureml.runtime).
            manifest.scoring["model_files"] = registered
    if project.environment is not None:
        files[f"env/{project.environment.name}"] = project.environment
        manifest.environment = {
            "file": f"env/{project.environment.name}",
            "requirements": read_requirements(project.environment),
        }
    manifest.source = git_source(project.root)


def register_files(folder: Path, project: Project) -> None:
    """Stage the ``model:`` files of a project that has no training script."""
    staged: dict[str, object] = {
        "framework": {},
        # Registered, not trained here: the versions installed now say nothing about
        # what pickled the files, so only Python is recorded.
        "libraries": {"python": library_versions()["python"]},
        "input_schema": None,
        "schema_from_example": False,
        "example": None,
        "metrics": {},
        "data": {},
        "files": [],
        "model_saved": False,
        "name": None,
        "registered_only": True,
    }
    (folder / STAGED).write_bytes(orjson.dumps(staged))


def add_project_files(folder: Path, project: Project) -> None:
    """Copy the project's ``model:`` files into what was staged (after training, so a
    training script may write them)."""
    check_project_paths(project.model, project.root, must_exist=True)
    files = collect((project.root / value for value in project.model), "model: in shipml.yaml")
    staged_file = folder / STAGED
    if not staged_file.is_file():  # train.py wrote the files but did not call save_model
        register_files(folder, project)
    staged = orjson.loads(staged_file.read_bytes())
    clash = sorted(set(files) & set(staged["files"]))
    if clash:
        raise TrainingError(
            f"{', '.join(clash)} is both in model: (shipml.yaml) and in save_model(files=...); "
            "name it in one place"
        )
    clash = sorted(set(files) & set(staged.get("model_files") or []))
    if clash:
        raise TrainingError(
            f"{', '.join(clash)} in model: (shipml.yaml) is the name save_model writes the "
            "model itself under; rename the file or register its folder instead"
        )
    copy_into(files, folder)
    staged["files"] = sorted([*staged["files"], *files])
    staged_file.write_bytes(orjson.dumps(staged))


def _declares_model(root: Path | None) -> bool:
    folder = root or find_project()
    return bool(folder and load_project(folder).model)


def staged_manifest(staged: dict[str, Any], name: str, contract: str | None) -> Manifest:
    """A manifest (version and files still to fill in) from what save_model staged.

    ``contract`` is the project's scoring code (azureml, class) or None for zero-code,
    when the model's flavour is the contract.
    """
    saved = staged.get("model_saved", True)
    saved_files = staged.get("model_files") or ([PICKLE_FILE] if saved else [])
    return Manifest(
        name=name,
        version=0,
        created="",
        contract=contract or staged.get("contract") or "sklearn",
        files={},
        model_file=saved_files[0] if saved_files else None,
        framework=staged["framework"],
        libraries=staged["libraries"],
        input_schema=staged["input_schema"],
        example=staged["example"],
        metrics=staged["metrics"],
        data=staged["data"],
        flavour={**staged.get("flavour", {}), "files": saved_files},
    )
