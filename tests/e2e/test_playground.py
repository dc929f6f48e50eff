"""The web playground in headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import REPO, Server, run_shipml

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page that records console errors and every request to another origin."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1000, "height": 900})
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "request", lambda r: None if r.url.startswith(origin) else self.foreign.append(r.url)
        )

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign


def score_of(page: Page, text: str, *, keyboard: bool = False) -> float:
    """Type ``text``, submit (button or Ctrl+Enter), wait for the new answer, read the score."""
    before = page.text_content("#raw") or ""
    page.fill("#f-text", text)
    if keyboard:
        page.focus("#f-text")
        page.keyboard.press("Control+Enter")
    else:
        page.click("#predict")
    expect(page.locator("#raw")).not_to_have_text(before)
    expect(page.locator("#predict")).to_be_enabled()
    return float(page.text_content("#score") or "nan")


def test_sentiment_playground(
    browser: Browser, serve: Callable[..., Server], trained_example: Callable[..., str]
) -> None:
    trained_example("sentiment")
    server = serve("sentiment@latest")
    watched = Watched(browser, server.url)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#predict-form:not([hidden])")
    assert "sentiment" in page.text_content("#model-name")  # type: ignore[operator]
    assert score_of(page, "I love this, it is wonderful") > 0.5
    assert page.text_content("#label") == "positive"
    assert score_of(page, "This was terrible and a waste of money", keyboard=True) < 0.5
    assert page.text_content("#label") == "negative"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sentiment-playground.png"), full_page=True)
    assert (SCREENSHOTS / "sentiment-playground.png").stat().st_size > 10_000
    watched.check_clean()


def test_iris_playground(
    browser: Browser, serve: Callable[..., Server], trained_example: Callable[..., str]
) -> None:
    trained_example("iris")
    server = serve("iris@latest")
    watched = Watched(browser, server.url)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#predict-form:not([hidden])")
    for field, value in (
        ("sepal_length", "6.7"),
        ("sepal_width", "3.0"),
        ("petal_length", "5.2"),
        ("petal_width", "2.3"),
    ):
        page.fill(f"#f-{field}", value)
    page.click("#predict")
    page.wait_for_selector("#label")
    assert page.text_content("#label") == "virginica"
    assert page.locator(".bar-row").count() == 3
    page.fill("#f-petal_width", "")
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])")
    assert "petal_width" in (page.text_content("#error") or "")
    page.screenshot(path=str(SCREENSHOTS / "iris-playground.png"), full_page=True)
    watched.check_clean()


def test_playground_asks_for_a_key(
    browser: Browser, iris_model: str, serve: Callable[..., Server]
) -> None:
    server = serve(iris_model, env={"SHIPML_API_KEYS": "let-me-in"})
    watched = Watched(browser, server.url)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#key-form:not([hidden])")
    page.fill("#api-key", "let-me-in")
    page.press("#api-key", "Enter")
    page.wait_for_selector("#predict-form:not([hidden])")
    page.click("#predict")
    page.wait_for_selector("#label")
    assert page.text_content("#label") in ("setosa", "versicolor", "virginica")
    # The 401 of the first /info is the only console error a browser logs here.
    watched.errors = [e for e in watched.errors if "401" not in e]
    watched.check_clean()


def test_api_docs_page(browser: Browser, iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model)
    watched = Watched(browser, server.url)
    watched.page.goto(server.url + "/docs")
    watched.page.wait_for_selector(".op")
    assert "/predict" in (watched.page.text_content("#operations") or "")
    assert "sepal_length" in (watched.page.text_content("#operations") or "")
    watched.check_clean()


def test_census_playground_sends_null_and_categories(
    browser: Browser, serve: Callable[..., Server], tmp_path: Path
) -> None:
    """Nullable fields: an empty box is null; a category is a list with its values."""
    project = tmp_path / "census"
    shutil.copytree(REPO / "tests" / "fixtures" / "census", project)
    run_shipml("train", cwd=project)
    server = serve("census@latest")
    watched = Watched(browser, server.url)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#predict-form:not([hidden])")
    options = page.locator("#f-job option").all_text_contents()
    assert options == ["(missing)", "admin", "craft", "exec", "sales", "service"]
    page.fill("#f-capital_gain", "")
    page.select_option("#f-job", label="(missing)")
    assert '"capital_gain":null' in (page.text_content("#curl") or "")
    page.click("#predict")
    page.wait_for_selector("#label")
    assert page.text_content("#label") in (">50K", "<=50K")
    page.screenshot(path=str(SCREENSHOTS / "census-playground.png"), full_page=True)
    watched.check_clean()


DECORATED_SCORE = """
import os
import joblib
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/regressor.pkl"))


@input_schema("data", NumpyParameterType(np.array([[1.0, 2.0]])))
@output_schema(StandardPythonParameterType([3.0]))
def run(data):
    return model.predict(data).tolist()
"""


def test_score_py_playground_shows_the_decorated_example(
    browser: Browser, serve: Callable[..., Server], tmp_path: Path
) -> None:
    """An inference_schema-decorated score.py: the JSON editor holds the decorators'
    example, and predicting with it shows run()'s answer."""
    import joblib
    from sklearn.linear_model import LinearRegression

    project = tmp_path / "decorated"
    (project / "model").mkdir(parents=True)
    x = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]
    joblib.dump(LinearRegression().fit(x, [sum(r) for r in x]), project / "model" / "regressor.pkl")
    (project / "score.py").write_text(DECORATED_SCORE)
    (project / "shipml.yaml").write_text("name: decorated\nscoring: score.py\nmodel: model/\n")
    run_shipml("train", cwd=project)
    server = serve("decorated@latest")
    watched = Watched(browser, server.url)
    page = watched.page
    page.goto(server.url + "/")
    page.wait_for_selector("#predict-form:not([hidden])")
    assert '"data"' in page.input_value("#body") and "1" in page.input_value("#body")
    page.click("#predict")
    expect(page.locator("#raw")).to_have_text(re.compile(r"^\[\s*3(\.0*\d*)?\s*\]$"))
    page.fill("#body", '{"data": [[1, 2, 3]]}')
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])")
    assert "does not fit" in (page.text_content("#error") or "")
    # the browser reports the 422 it was asked to show; nothing else may be wrong
    watched.errors = [e for e in watched.errors if "status of 422" not in e]
    watched.check_clean()
