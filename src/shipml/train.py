"""``shipml train``: run a project's training script and publish what it saved.

The script runs in its own process (so a crash or a ``sys.exit`` in user code cannot
take shipml with it) with ``SHIPML_OUTPUT`` naming a staging folder. Once it exits
cleanly, the staged model, the scoring script and the environment file are published
together as the next version of the project's model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from shipml.errors import TrainingError
from shipml.project import Project, find_project, load_project, read_requirements
from shipml.saving import STAGED, staged_manifest
from shipml.store import Manifest, Store, default_store_url


def store_url(explicit: str | None, project: Project | None) -> str:
    """The store to use: ``--store``, else ``$SHIPML_STORE``, else the project's, else local."""
    if explicit:
        return explicit
    if os.environ.get("SHIPML_STORE"):
        return os.environ["SHIPML_STORE"]
    if project is not None and project.store:
        store = project.store
        return store if "://" in store else str(project.root / store)
    return default_store_url()


def train_project(project: Project, store: Store) -> tuple[Manifest, str]:
    """Run ``project``'s training script and publish the result into ``store``."""
    with tempfile.TemporaryDirectory(prefix="shipml-train-") as output:
        env = {**os.environ, "SHIPML_OUTPUT": output, "PYTHONUNBUFFERED": "1"}
        process = subprocess.run(
            [sys.executable, str(project.train)], cwd=project.root, env=env, check=False
        )
        if process.returncode != 0:
            raise TrainingError(
                f"{project.train.name} failed with exit code {process.returncode} "
                "(its output is above); nothing was registered"
            )
        return publish_staged(Path(output), project.root, store)


def publish_staged(
    folder: Path, project_root: Path | None, store: Store | None = None
) -> tuple[Manifest, str]:
    """Publish what ``save_model`` staged in ``folder``, with the project's code."""
    staged_file = folder / STAGED
    if not staged_file.is_file():
        raise TrainingError(
            "the training script finished without saving a model: call "
            "shipml.save_model(model, training_data=X, ...) at its end"
        )
    staged = orjson.loads(staged_file.read_bytes())
    root = project_root or find_project()
    project = load_project(root) if root else None
    name = staged.get("name") or (project.name if project else None)
    if not name:
        raise TrainingError("save_model needs name=... when no shipml.yaml is around")
    manifest = staged_manifest(staged, name, project.contract if project else None)
    contract = manifest.contract
    if contract == "azureml" and not staged.get("schema_from_example"):
        manifest.input_schema, manifest.example = None, None
    target = store or Store(store_url(None, project))
    sample = staged.get("sample")
    if sample:  # a blob the manifest names, but not one of the files served or baked in
        entry = target.put_blob((folder / sample["file"]).read_bytes())
        manifest.data = {
            **manifest.data,
            "sample": {"digest": entry.digest, "size": entry.size, "rows": sample["rows"]},
        }
    files = {model: folder / model for model in manifest.flavour["files"]}
    files.update({extra: folder / extra for extra in staged["files"]})
    if project is not None:
        if project.scoring is not None:
            script = f"code/{project.scoring.name}"
            files[script] = project.scoring
            manifest.scoring = {"script": script, "class": project.scoring_class}
        if project.environment is not None:
            files[f"env/{project.environment.name}"] = project.environment
            manifest.environment = {
                "file": f"env/{project.environment.name}",
                "requirements": read_requirements(project.environment),
            }
        manifest.source = git_source(project.root)
    return target.publish(manifest, files)


def git_source(root: Path) -> dict[str, object]:
    """The commit the project was trained from, if it is in a git work tree."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # No git here (a train image): the build records the commit it was built from.
        recorded = os.environ.get("SHIPML_SOURCE_COMMIT")
        return {"commit": recorded} if recorded else {}
    return {"commit": commit, "dirty": bool(dirty)}


def main(argv: list[str] | None = None) -> int:
    """``python -m shipml.train DIR``: the train image's entry point (no CLI needed).

    The store comes from ``SHIPML_STORE`` (with its credentials in the environment), so
    one image trains into a local folder, a mounted volume or Azure Blob Storage alike.
    """
    from shipml.errors import ShipmlError

    args = sys.argv[1:] if argv is None else argv
    try:
        project = load_project(Path(args[0]) if args else None)
        store = Store(store_url(None, project))
        print(f"Training {project.name} into {store.url}", flush=True)
        manifest, digest = train_project(project, store)
    except ShipmlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"Registered {manifest.ref} ({digest})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
