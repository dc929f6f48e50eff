"""Which source files travel with a scoring script, as an Azure ML code folder does.

Azure ML uploads a deployment's whole code folder (``code_configuration.code``), so a
``score.py`` may import its neighbours (``from preprocessing import clean``) or open a
file beside it. shipml keeps that promise without copying a project's data or virtual
environment into every version:

- a script in a folder of its own (``scoring: onlinescoring/score.py``): that folder is
  the code folder and is stored whole (hidden entries, ``__pycache__`` and virtual
  environments left out), as Azure ML would upload it;
- a script at the top of the project (``scoring: score.py``): the script and the local
  modules and packages it imports, found in its source and theirs, recursively; the files
  beside it that this code names in a string (``"labels.json"``, ``"config/app.yml"``:
  what ``open(os.path.join(os.path.dirname(__file__), "labels.json"))`` reads); and the
  swagger documents Microsoft's server answers for ``/swagger.json`` (``swagger.json``,
  ``swagger2.json``, ``swagger3.json``, ``swagger3.1.json``).

Every file keeps its path relative to the script's folder, so the version folder holds
``score.py``, ``preprocessing.py``, ``helpers/__init__.py``… side by side, exactly where
the script's imports look for them.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from shipml.errors import ProjectError
from shipml.scoring.azureml.swagger import USER_FILES

# A code folder this large is almost certainly data, not code: say so instead of storing it.
MAX_CODE_FILES = 2000
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


def code_files(script: Path, project_root: Path) -> dict[str, Path]:
    """The scoring script and the code it needs, keyed by path relative to its folder."""
    folder = script.parent.resolve()
    if folder != project_root.resolve():
        return _whole_folder(folder)
    found = {script.name: script}
    pending = [script]
    while pending:
        source = pending.pop()
        for relpath in _named_files(source, folder):
            found.setdefault(relpath, folder / relpath)
        for target in _local_imports(source, folder):
            for relpath, path in _module_files(target, folder).items():
                if relpath not in found:
                    found[relpath] = path
                    if path.suffix == ".py":
                        pending.append(path)
    for names in USER_FILES.values():
        found.update({name: folder / name for name in names if (folder / name).is_file()})
    return dict(sorted(found.items()))


def _whole_folder(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for current, dirs, names in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not (here / d).is_symlink()
        )
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or path.suffix == ".pyc" or not path.is_file():
                continue
            if not path.resolve().is_relative_to(folder):
                continue  # a link out of the code folder: not part of it
            files[path.relative_to(folder).as_posix()] = path
            if len(files) > MAX_CODE_FILES:
                raise ProjectError(
                    f"the scoring script's folder {folder} holds more than {MAX_CODE_FILES} "
                    "files, all of which would be stored with every version: keep data out "
                    "of it (register model files with model: in shipml.yaml)"
                )
    return files


def _local_imports(source: Path, folder: Path) -> set[str]:
    """Top-level names ``source`` imports that are modules or packages in ``folder``."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return set()  # the script itself is checked elsewhere; a helper is imported as is
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {name for name in names if _module_files(name, folder)}


def _named_files(source: Path, folder: Path) -> set[str]:
    """Files of ``folder`` (not Python) that ``source`` names in a string literal."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value.strip().removeprefix("./")
        if not text or len(text) > 255 or "\n" in text or text.startswith(("/", ".")):
            continue
        parts = text.split("/")
        if ".." in parts or any(part in SKIPPED_DIRS for part in parts):
            continue
        path = folder / text
        try:
            if path.suffix != ".py" and path.is_file() and path.resolve().is_relative_to(folder):
                names.add(path.relative_to(folder).as_posix())
        except (OSError, ValueError):
            continue
    return names


def _module_files(name: str, folder: Path) -> dict[str, Path]:
    """The files of module ``name`` in ``folder``: ``name.py``, or the package ``name/``."""
    module = folder / f"{name}.py"
    if module.is_file():
        return {module.name: module}
    package = folder / name
    if package.is_dir() and not package.is_symlink() and any(package.rglob("*.py")):
        return {
            path.relative_to(folder).as_posix(): path
            for path in sorted(package.rglob("*"))
            if path.is_file()
            and path.suffix != ".pyc"
            and "__pycache__" not in path.parts
            and path.resolve().is_relative_to(folder)
        }
    return {}
