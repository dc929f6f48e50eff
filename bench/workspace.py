"""Where the benchmark keeps things: the checkout it measures, its venvs, its scratch space.

Everything it creates lives under ``bench/.venvs`` (kept between runs: installs are the
slow part) and ``bench/.work`` (models, logs, request bodies; made anew each run), both
git-ignored. Results go to ``bench/results`` and the table into ``bench/README.md``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


@dataclass(frozen=True)
class Workspace:
    repo: Path = REPO  # the shipml checkout installed into the shipml venv and measured
    root: Path = BENCH

    @property
    def venvs(self) -> Path:
        return self.root / ".venvs"

    @property
    def work(self) -> Path:
        return self.root / ".work"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def python(self, venv: str) -> Path:
        return self.venvs / venv / "bin" / "python"

    def tool(self, venv: str, name: str) -> Path:
        return self.venvs / venv / "bin" / name


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
