"""CORS in a real browser: a page on another port calls the service with fetch()."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import SEED_IRIS_RECORD, Server
from tests.e2e.test_playground import CHROMIUM, FLAGS

pytestmark = pytest.mark.browser

CALL = """async ([url, record, key]) => {
  try {
    const answer = await fetch(url + "/predict", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-API-Key": key},
      body: JSON.stringify(record),
    });
    return {status: answer.status, id: answer.headers.get("X-Request-ID"),
            body: await answer.json()};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[list[str]]:
    """Two static sites (two origins) serving the same empty page."""
    (tmp_path / "caller.html").write_text("<!doctype html><title>caller</title>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass

    sites = [Quiet(("127.0.0.1", 0), handler) for _ in range(2)]
    for site in sites:
        threading.Thread(target=site.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{site.server_address[1]}" for site in sites]
    for site in sites:
        site.shutdown()
        site.server_close()


def test_an_allowed_origin_reads_answers_and_another_is_blocked(
    browser: Browser, pages: list[str], iris_model: str, serve: Callable[..., Server]
) -> None:
    allowed, other = pages
    server = serve(iris_model, env={"SHIPML_CORS_ORIGINS": allowed, "SHIPML_API_KEYS": "k1"})
    results = {}
    for origin in (allowed, other):
        page = browser.new_page()
        page.goto(f"{origin}/caller.html")
        results[origin] = page.evaluate(CALL, [server.url, SEED_IRIS_RECORD, "k1"])
        page.close()
    answer = results[allowed]
    assert answer["status"] == 200 and answer["body"]["label"] == "virginica", answer
    assert answer["id"]  # X-Request-ID is exposed to the page
    assert "blocked" in results[other], results[other]
    # a page without the key gets the service's 401, readable: the origin is allowed
    page = browser.new_page()
    page.goto(f"{allowed}/caller.html")
    unkeyed = page.evaluate(CALL, [server.url, SEED_IRIS_RECORD, "wrong"])
    assert unkeyed["status"] == 401 and unkeyed["body"]["error"]["code"] == "unauthorized"


def test_without_settings_no_page_of_another_origin_may_call(
    browser: Browser, pages: list[str], iris_model: str, serve: Callable[..., Server]
) -> None:
    server = serve(iris_model)
    page = browser.new_page()
    page.goto(f"{pages[0]}/caller.html")
    assert "blocked" in page.evaluate(CALL, [server.url, SEED_IRIS_RECORD, ""])
