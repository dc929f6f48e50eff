"""The examples, trained once per test run and copied into the stores of the tests that start
from a trained model.

Training the sentiment example costs ~20 s of CPU. Tests of serving, clients, images and the
playground need a trained example only as their starting point, and several of them ran
``shipml train`` for it. :func:`copy_into` runs the real ``shipml train`` on
``examples/<name>`` once per test run — across pytest-xdist workers, under a file lock, in
the run's shared temporary folder — and copies the store it made into the test's store, so
that each test still owns its store and what it changes there. The store is
content-addressed and holds no absolute path, so a copy is that store. Tests about training
itself (``make demo``, the quickstart, the store commands, the Azure store, the deploy
images' two versions) run ``shipml train`` as before.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this run sees (a worker's base is one level below it)."""
    base = factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trained"
    folder.mkdir(exist_ok=True)
    return folder


def copy_into(store: Path, example: str, shared: Path, shipml: str) -> str:
    """Put ``examples/<example>``, as ``shipml train`` registers it (version 1), into ``store``
    (created, or merged into one that holds other models); returns ``<example>@latest``."""
    made = _trained(example, shared, shipml)
    shutil.copytree(made, store, dirs_exist_ok=True)
    return f"{example}@latest"


def _trained(example: str, shared: Path, shipml: str) -> Path:
    folder = shared / example
    store = folder / "store"
    with (shared / f"{example}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first caller trains, the others wait for it
        if (folder / "done").exists():
            return store
        shutil.rmtree(folder, ignore_errors=True)
        project = folder / example
        shutil.copytree(REPO / "examples" / example, project)
        env = {**os.environ, "SHIPML_STORE": str(store), "SHIPML_CACHE": str(folder / "cache")}
        done = subprocess.run(
            [shipml, "train"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"shipml train of {example} failed:\n{done.stdout}{done.stderr}")
        (folder / "done").touch()
    return store
