"""The Node.js client: its own tests against live servers, and its npm package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, SHIPML

pytestmark = pytest.mark.slow
NODE_CLIENT = REPO / "clients" / "node"


def test_node_client_suite() -> None:
    result = subprocess.run(
        ["npm", "test"],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "SHIPML_BIN": SHIPML,
            "HOME": str(Path.home()),
        },
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 8" in result.stdout


def test_npm_pack_installs_and_imports(tmp_path: Path) -> None:
    packed = subprocess.run(
        ["npm", "pack", "--pack-destination", str(tmp_path)],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    tarball = tmp_path / packed.stdout.strip().splitlines()[-1]
    assert tarball.is_file()
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "version": "1.0.0", "type": "module"}')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", str(tarball)],
        cwd=app,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    (app / "check.js").write_text(
        'import { Client, ShipmlError, TimeoutError } from "shipml-client";\n'
        'const c = new Client("http://127.0.0.1:1/");\n'
        "console.log(c.url, typeof ShipmlError, new TimeoutError(5).code);\n"
    )
    out = subprocess.run(
        ["node", "check.js"], cwd=app, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "http://127.0.0.1:1 function timeout"
    installed = app / "node_modules" / "shipml-client"
    assert (installed / "index.d.ts").is_file() and not (installed / "test").exists()
    shutil.rmtree(app)
