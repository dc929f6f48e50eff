"""One virtual environment per server under ``bench/.venvs``, made with uv and reused.

uv installs MLflow and its ~100 dependencies in seconds where pip takes about two minutes
on this machine, which is what lets installs and the whole sweep fit in 20 minutes. A
venv is reinstalled only when its requirement list (or the key, e.g. the checkout's
``pyproject.toml``) changes: a stamp file inside it records the digest of both.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.peers import Venv
from bench.workspace import Workspace

STAMP = ".bench-installed"
INSTALL_TIMEOUT = 900  # seconds; a stuck resolver or network fails the venv, not the sweep
PARALLEL = 4


@dataclass(frozen=True)
class Installed:
    name: str
    seconds: float
    reused: bool
    error: str | None = None


def uv() -> str:
    found = Path(sys.executable).with_name("uv")
    if found.exists():
        return str(found)
    path = shutil.which("uv")
    if path is None:
        raise SystemExit("uv is missing: make bench installs it (pip install 'shipml[bench]')")
    return path


# Compiled at install: uv leaves that to the first import, and where
# PYTHONDONTWRITEBYTECODE is set (this machine, many CI images) nothing is ever cached, so
# every server start would compile scikit-learn, SciPy and pandas again (~7 s here) and
# the start → ready column would measure the compiler.
INSTALL_OPTIONS = ("--compile-bytecode",)


def digest(venv: Venv) -> str:
    text = json.dumps([venv.requirements, venv.key, sys.version_info[:2], INSTALL_OPTIONS])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_all(ws: Workspace, venvs: Iterable[Venv]) -> list[Installed]:
    """Create or reuse every venv, several at a time; a failure is reported, not raised."""
    ws.logs.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda venv: ensure(ws, venv), venvs))


def ensure(ws: Workspace, venv: Venv) -> Installed:
    folder = ws.venvs / venv.name
    stamp = folder / STAMP
    wanted = digest(venv)
    if stamp.exists() and stamp.read_text() == wanted and ws.python(venv.name).exists():
        return Installed(venv.name, 0.0, reused=True)
    started = time.monotonic()
    log = ws.logs / f"install-{venv.name}.log"
    commands = [
        [uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(folder)],
        [
            uv(), "pip", "install", "--system-certs", *INSTALL_OPTIONS,
            "--python", str(ws.python(venv.name)), *venv.requirements,
        ],
    ]  # fmt: skip
    with log.open("w") as out:
        for command in commands:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            try:
                done = subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return Installed(venv.name, time.monotonic() - started, False, f"timed out: {log}")
            if done.returncode != 0:
                error = f"`{command[1]}` failed (exit {done.returncode}); see {log}"
                return Installed(venv.name, time.monotonic() - started, False, error)
    stamp.write_text(wanted)
    return Installed(venv.name, time.monotonic() - started, reused=False)


def versions(ws: Workspace, venv: str) -> dict[str, str]:
    """Installed distributions of a venv, by normalised name (for the report)."""
    done = subprocess.run(
        [uv(), "pip", "list", "--format", "json", "--python", str(ws.python(venv))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return {}
    return {row["name"].lower(): row["version"] for row in json.loads(done.stdout)}
