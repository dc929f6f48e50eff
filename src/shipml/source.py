"""Where a model came from: the git commit of the project it was trained or built from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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
