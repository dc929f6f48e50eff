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

from shipml.errors import ShipmlError, TrainingError
from shipml.project import Project, load_project, store_url
from shipml.publish import publish_staged, register_files
from shipml.store import Manifest, Store


def train_project(project: Project, store: Store) -> tuple[Manifest, str]:
    """Run ``project``'s training script and publish the result into ``store``.

    A project with no ``train:`` (a ``score.py`` that brings an existing model, listed
    under ``model:``) registers its files as the next version, without training.
    """
    with tempfile.TemporaryDirectory(prefix="shipml-train-") as output:
        if project.train is None:
            register_files(Path(output), project)
            return publish_staged(Path(output), project.root, store)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m shipml.train DIR``: the train image's entry point (no CLI needed).

    The store comes from ``SHIPML_STORE`` (with its credentials in the environment), so
    one image trains into a local folder, a mounted volume or Azure Blob Storage alike.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        project = load_project(Path(args[0]) if args else None)
        store = Store(store_url(None, project))
        doing = "Training" if project.train else "Registering (no training)"
        print(f"{doing} {project.name} into {store.url}", flush=True)
        manifest, digest = train_project(project, store)
    except ShipmlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"Registered {manifest.ref} ({digest})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
