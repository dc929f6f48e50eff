"""shipml itself, installed from the checkout being measured (editable, so the sweep runs
whatever the repository holds now), in three configurations.

The configuration names are here and only here: when a setting is renamed, change
``CONFIGS``. A configuration the checkout does not know yet is marked n/a, not failed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from bench.peers import (
    PANDAS,
    SKLEARN,
    WORKERS,
    Launch,
    ModelInfo,
    Peer,
    Venv,
    label_of_probabilities,
)
from bench.workspace import Workspace

VENV = "shipml"
WANTED_EXTRAS = ("sklearn", "onnx")  # installed when the checkout's pyproject declares them


@dataclass(frozen=True)
class Config:
    name: str
    title: str
    env: dict[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    # What the checkout must know for this configuration to mean anything:
    # an environment variable (looked up in the serve settings) or a `shipml serve` flag.
    needs_env: str | None = None
    needs_flag: str | None = None
    numeric_only: bool = False  # serves models of numeric features only


# Why `--onnx` does not serve the tabular model: shipml checks a conversion against the
# training sample it keeps, and it keeps one for numeric tables only (it refuses to start).
NUMERIC_ONLY = (
    "`--onnx` checks the conversion against the training sample shipml keeps, and it keeps "
    "one for numeric tables only: shipml refuses to start it for this DataFrame model"
)


BATCHING_OFF = "SHIPML_BATCHING"
ONNX_FLAG = "--onnx"
MONITOR = "SHIPML_MONITOR"  # payload logging at its default sample rate

CONFIGS = (
    Config("shipml", "shipml (default)"),
    Config(
        "shipml-nobatch",
        f"shipml, batching off (`{BATCHING_OFF}=0`)",
        env={BATCHING_OFF: "0"},
        needs_env=BATCHING_OFF,
    ),
    Config(
        "shipml-onnx",
        f"shipml `{ONNX_FLAG}`",
        flags=(ONNX_FLAG,),
        needs_flag=ONNX_FLAG,
        numeric_only=True,
    ),
    Config(
        "shipml-monitor",
        f"shipml, payload logging on (`{MONITOR}=1`)",
        env={MONITOR: "1"},
        needs_env=MONITOR,
    ),
)


def extras(repo: Path) -> list[str]:
    declared = tomllib.loads((repo / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    return [extra for extra in WANTED_EXTRAS if extra in declared]


def venv(ws: Workspace) -> Venv:
    wanted = ",".join(extras(ws.repo))
    target = f"{ws.repo}[{wanted}]" if wanted else str(ws.repo)
    pyproject = hashlib.sha256((ws.repo / "pyproject.toml").read_bytes()).hexdigest()
    return Venv(VENV, (SKLEARN, PANDAS, "-e", target), key=pyproject)


def store(ws: Workspace) -> Path:
    return ws.work / "store"


def launcher(config: Config) -> Any:
    def launch(ws: Workspace, model: ModelInfo, port: int) -> Launch:
        argv = [
            str(ws.tool(VENV, "shipml")),
            "serve", model.name,
            "--store", str(store(ws)),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", str(WORKERS),
            *config.flags,
        ]  # fmt: skip
        return Launch(
            argv=argv,
            url=f"http://127.0.0.1:{port}/predict",
            body=orjson.dumps(model.as_record()),
            env={"SHIPML_CACHE": str(ws.work / "shipml-cache"), **config.env},
            cwd=ws.work,
        )

    return launch


def unavailable(config: Config) -> Any:
    def check(ws: Workspace, model: ModelInfo) -> str | None:
        if config.numeric_only and model.frame:
            return NUMERIC_ONLY
        if config.needs_flag and config.needs_flag not in serve_help(ws.tool(VENV, "shipml")):
            return f"this checkout's `shipml serve` has no `{config.needs_flag}`"
        if config.needs_env and not knows_env(ws.python(VENV), config.needs_env):
            return f"this checkout's serve settings do not read `{config.needs_env}`"
        return None

    return check


@cache
def serve_help(shipml: Path) -> str:
    result = subprocess.run(
        [str(shipml), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
        check=False,
    )
    return result.stdout + result.stderr


# Settings are SHIPML_<FIELD> for each field of ServeSettings; a variable read some other
# way shows up in the package source.
KNOWS_ENV = """
import dataclasses, pathlib, sys
import shipml
from shipml.serving.settings import ServeSettings
name = sys.argv[1]
fields = {"SHIPML_" + f.name.upper() for f in dataclasses.fields(ServeSettings)}
source = "".join(p.read_text() for p in pathlib.Path(shipml.__file__).parent.rglob("*.py"))
print(name in fields or name in source)
"""


@cache
def knows_env(python: Path, name: str) -> bool:
    result = subprocess.run(
        [str(python), "-c", KNOWS_ENV, name], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip() == "True"


def answer(body: Any, model: ModelInfo) -> str:
    return label_of_probabilities(body["probabilities"], model)


PEERS = [
    Peer(
        name=config.name,
        title=config.title,
        kind="shipml",
        venv=VENV,
        launch=launcher(config),
        answer=answer,
        unavailable=unavailable(config),
    )
    for config in CONFIGS
]
