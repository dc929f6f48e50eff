"""Which files a model version registers, and where they land in its folder.

Azure ML's rule, kept so that scoring scripts find their files unchanged: registering a
file puts it at ``AZUREML_MODEL_DIR/<its name>``; registering a folder ``model/`` puts
its whole tree at ``AZUREML_MODEL_DIR/model/...``. The same rule serves
``save_model(files=[...])`` and the ``model:`` key of ``shipml.yaml``.

A version folder also holds shipml's own entries (``code/``, ``env/``,
``manifest.json`` ...), so a registered name that would take one of their places is
refused, as is anything that would bring in a file from outside what was named (a
symbolic link pointing out of its folder, ``..`` or an absolute path in ``shipml.yaml``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from shipml.errors import ProjectError, TrainingError

# The entries of a version folder that belong to shipml (the model's pickle, the scoring
# code, the environment file, the manifest, the staging record, an ONNX conversion).
RESERVED = frozenset(
    {"code", "env", "manifest.json", "model.joblib", "staged.json", "training-sample.npy", "onnx"}
)


class ModelFilesError(TrainingError):
    code = "invalid_model_files"


def collect(sources: Iterable[str | Path], where: str = "save_model(files=...)") -> dict[str, Path]:
    """Map each registered file's path inside the version folder to the file to copy.

    ``sources`` are files or folders; ``where`` names the caller in error messages.
    """
    found: dict[str, Path] = {}
    for source in sources:
        path = Path(source)
        if path.is_symlink() and not path.exists():
            raise ModelFilesError(f"{where} names {str(source)!r}, a broken symbolic link")
        if path.is_dir():
            entries = _folder(path, where)
            if not entries:
                raise ModelFilesError(f"{where} names the folder {str(source)!r}, which is empty")
        elif path.is_file():
            entries = {path.name: path}
        else:
            raise ModelFilesError(f"{where} names {str(source)!r}, which does not exist")
        for relpath, file in entries.items():
            _check_name(relpath, source, where)
            if relpath in found:
                raise ModelFilesError(
                    f"{where}: {found[relpath]} and {file} would both be stored as {relpath!r}; "
                    "rename one of them or register their folders instead"
                )
            found[relpath] = file
    return dict(sorted(found.items()))


def _folder(folder: Path, where: str) -> dict[str, Path]:
    """The files under ``folder``, keyed ``<folder name>/<path inside it>``."""
    root = folder.resolve()
    top = root.name
    entries: dict[str, Path] = {}
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        for name in dirs:
            if (here / name).is_symlink():
                raise ModelFilesError(
                    f"{where}: {here / name} is a symbolic link to a folder; register the "
                    "folder it points to instead, or copy it in"
                )
        for name in files:
            file = here / name
            if not file.exists():
                raise ModelFilesError(f"{where}: {file} is a broken symbolic link")
            if not file.resolve().is_relative_to(root):
                raise ModelFilesError(
                    f"{where}: {file} is a symbolic link to {file.resolve()}, outside "
                    f"{folder}; only files inside the registered folder are stored"
                )
            relative = file.relative_to(folder).as_posix()
            entries[f"{top}/{relative}"] = file
    return entries


def _check_name(relpath: str, source: str | Path, where: str) -> None:
    first = PurePosixPath(relpath).parts[0]
    if first in RESERVED:
        raise ModelFilesError(
            f"{where} names {str(source)!r}, which would be stored as {relpath!r}: "
            f"{first!r} is shipml's own (reserved: {', '.join(sorted(RESERVED))}). "
            "Rename the file or put it in a folder and register the folder"
        )


def check_project_paths(values: Iterable[str], root: Path, must_exist: bool = False) -> None:
    """``model:`` entries of ``shipml.yaml`` must stay inside the project folder.

    A training script may write them, so they need to exist only when registered.
    """
    resolved_root = root.resolve()
    for value in values:
        if Path(value).is_absolute() or ".." in PurePosixPath(value.replace("\\", "/")).parts:
            raise ProjectError(
                f"model: {value!r} must be a path inside the project folder, without '..'"
            )
        path = root / value
        if not path.exists():
            if must_exist:
                raise ProjectError(f"model: {value!r} does not exist in {root}")
            continue
        if not path.resolve().is_relative_to(resolved_root):
            raise ProjectError(
                f"model: {value!r} leads to {path.resolve()}, outside the project folder"
            )


def copy_into(files: Mapping[str, Path], folder: Path) -> None:
    """Copy ``collect``'s result into a staging folder, keeping the relative paths."""
    for relpath, source in files.items():
        target = folder / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
