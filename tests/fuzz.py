"""Hold running services to their own OpenAPI documents with schemathesis (issue 14).

Three models, each served by a real ``shipml serve``: the iris example (numbers), the
census fixture (a DataFrame of numbers, integers, categories, text, a flag and missing
values) and a score.py written as Azure ML's documentation writes them. schemathesis
reads each service's ``/openapi.json`` and sends it generated requests, valid and
invalid, with every check on: no 5xx, every status, header, content type and body as
documented, requests the document calls valid accepted and the others refused.

``make test`` runs a bounded, seeded run (tests/integration/test_fuzz.py); ``make fuzz``
a longer one, every phase included::

    .venv/bin/python -m tests.fuzz --examples 300 --phases examples,coverage,fuzzing,stateful
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, SHIPML, Server, launch, stop_all

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MODELS = {  # name: (project folder, reference)
    "iris": (REPO / "examples" / "iris", "iris@latest"),
    "census": (REPO / "tests" / "fixtures" / "census", "census@latest"),
    "score.py": (REPO / "tests" / "fixtures" / "azureml_docs", "diabetes-docs@latest"),
}
QUICK_PHASES = "examples,fuzzing"  # make fuzz adds coverage (boundaries) and stateful


@dataclass
class Outcome:
    model: str
    passed: bool
    report: str


def train(folder: Path, env: dict[str, str]) -> dict[str, Path]:
    """Each model's project, copied into ``folder`` and trained into the store of ``env``."""
    projects = {}
    runs = []
    for name, (source, _) in MODELS.items():
        project = folder / source.name
        shutil.copytree(source, project)
        projects[name] = project
        runs.append(
            subprocess.Popen(
                [SHIPML, "train"],  # forked when the suite's fork server runs
                cwd=project,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for run in runs:
        output = run.communicate(timeout=600)[0]
        if run.returncode != 0:
            raise RuntimeError(f"shipml train failed:\n{output}")
    return projects


def fuzz(servers: dict[str, Server], examples: int, seed: int, phases: str) -> list[Outcome]:
    """schemathesis against each server, all at once (each run waits on its server)."""
    runs = {}
    for model, server in servers.items():
        command = [
            SCHEMATHESIS,
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--seed",
            str(seed),
            "--max-examples",
            str(examples),
            "--phases",
            phases,
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--no-color",
            "--request-timeout",
            "30",
        ]
        runs[model] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    outcomes = []
    for model, run in runs.items():
        report = run.communicate(timeout=3600)[0]
        outcomes.append(Outcome(model, run.returncode == 0, report))
    return outcomes


def run_all(examples: int, seed: int, phases: str, folder: Path) -> list[Outcome]:
    env = {"SHIPML_STORE": str(folder / "store"), "SHIPML_CACHE": str(folder / "cache")}
    projects = train(folder, env)
    servers = {
        name: launch((reference,), folder, env, cwd=projects[name])
        for name, (_, reference) in MODELS.items()
    }
    try:
        for server in servers.values():
            server.wait_ready(timeout=120)
        return fuzz(servers, examples, seed, phases)
    finally:
        stop_all(servers.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="examples per operation")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipml-fuzz-") as folder:
        outcomes = run_all(args.examples, args.seed, args.phases, Path(folder))
    for outcome in outcomes:
        print(f"== {outcome.model}: {'passed' if outcome.passed else 'FAILED'}")
        print(outcome.report)
    return 0 if all(outcome.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
