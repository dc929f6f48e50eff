"""The Node.js client: its own tests against live servers, and its npm package."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import FORKSERVER_VARIABLE, REPO, SHIPML, Server, free_port

pytestmark = pytest.mark.slow
NODE_CLIENT = REPO / "clients" / "node"


def test_node_client_suite(tmp_path: Path, trained_example: Callable[..., str]) -> None:
    seed = tmp_path / "seed"  # iris and sentiment, trained once per run (tests/trained.py)
    for example in ("iris", "sentiment"):
        trained_example(example, store=seed)
    result = subprocess.run(
        ["npm", "test"],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "SHIPML_BIN": SHIPML,
            "HOME": str(Path.home()),
            "SHIPML_TEST_SEED_STORE": str(seed),
            # the suite's `shipml`s fork from this worker's fork server, as the others do
            **{k: v for k, v in os.environ.items() if k == FORKSERVER_VARIABLE},
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


def test_textalyze_app(
    tmp_path: Path, serve: Callable[..., Server], trained_example: Callable[..., str]
) -> None:
    """The seeds' app prints scores from a live sentiment service, and serves its page."""
    server = serve(trained_example("sentiment"))
    app = tmp_path / "textalyze"
    shutil.copytree(REPO / "examples" / "textalyze", app)
    manifest = app / "package.json"
    manifest.write_text(
        manifest.read_text().replace("file:../../clients/node", f"file:{NODE_CLIENT}")
    )
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund"],
        cwd=app,
        check=True,
        capture_output=True,
        timeout=120,
    )
    env = {**os.environ, "SHIPML_URL": server.url}
    printed = subprocess.run(
        ["node", "textalyze.js", "I love this", "This was terrible and a waste of money"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    (high, positive, *_), (low, negative, *_) = (line.split() for line in printed)
    assert positive == "positive" and float(high) > 0.5
    assert negative == "negative" and float(low) < 0.5

    port = free_port()
    web = subprocess.Popen(
        ["node", "textalyze.js", "--serve", "--port", str(port)],
        cwd=app,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        page_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                page = httpx.get(f"{page_url}/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "textalyze --serve did not answer"
                time.sleep(0.1)
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        scored = httpx.post(f"{page_url}/score", json={"text": "I love this"}).json()
        assert scored["label"] == "positive" and scored["score"] > 0.5
    finally:
        web.terminate()
        web.wait(timeout=10)
