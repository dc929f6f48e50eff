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


def test_textalyze_app(tmp_path: Path) -> None:
    """The seeds' app prints scores from a live sentiment service, and serves its page."""
    import os
    import time

    import httpx

    from tests.conftest import free_port, run_shipml, wait_until_ready

    project = tmp_path / "sentiment"
    shutil.copytree(REPO / "examples" / "sentiment", project)
    run_shipml("train", cwd=project)
    port = free_port()
    server = subprocess.Popen(
        [SHIPML, "serve", "sentiment@latest", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    app_folder = tmp_path / "textalyze"
    shutil.copytree(REPO / "examples" / "textalyze", app_folder)
    (app_folder / "package.json").write_text(
        (app_folder / "package.json")
        .read_text()
        .replace("file:../../clients/node", f"file:{NODE_CLIENT}")
    )
    web = None
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"],
            cwd=app_folder,
            check=True,
            capture_output=True,
            timeout=120,
        )
        env = {**os.environ, "SHIPML_URL": f"http://127.0.0.1:{port}"}
        printed = subprocess.run(
            ["node", "textalyze.js", "I love this", "This was terrible and a waste of money"],
            cwd=app_folder,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()
        assert printed[0].split()[1] == "positive" and float(printed[0].split()[0]) > 0.5
        assert printed[1].split()[1] == "negative" and float(printed[1].split()[0]) < 0.5
        web_port = free_port()
        web = subprocess.Popen(
            ["node", "textalyze.js", "--serve", "--port", str(web_port)],
            cwd=app_folder,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(50):
            try:
                page = httpx.get(f"http://127.0.0.1:{web_port}/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert (
            page.status_code == 200
            and "default-src 'self'" in page.headers["content-security-policy"]
        )
        scored = httpx.post(
            f"http://127.0.0.1:{web_port}/score", json={"text": "I love this"}
        ).json()
        assert scored["label"] == "positive"
    finally:
        if web is not None:
            web.terminate()
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
