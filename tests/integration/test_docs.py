"""The examples in docs/ run as written and give the documented output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REPO, Server

pytestmark = pytest.mark.slow
BLOCK = re.compile(
    r"```(?P<lang>sh|js|python)\n(?P<command>.*?)```\s*```json\n(?P<expected>.*?)```", re.DOTALL
)
DOC_URL = "http://127.0.0.1:8000"


def examples(doc: str) -> list[tuple[str, str, str]]:
    text = (REPO / "docs" / doc).read_text()
    return [(m["lang"], m["command"], m["expected"]) for m in BLOCK.finditer(text)]


def execute(lang: str, code: str, url: str) -> str:
    """Run one documented example as a user would: bash, node or this venv's python."""
    code = code.replace(DOC_URL, url)
    command = {
        "sh": ["bash", "-c", code],
        "js": ["node", "--input-type=module", "-e", code],
        "python": [sys.executable, "-c", code],
    }[lang]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{lang} example failed:\n{code}\n{result.stderr}"
    return result.stdout


def matches(actual: Any, expected: Any, where: str = "$") -> None:
    """Same structure; strings equal ("…" matches anything); numbers within 0.05."""
    if isinstance(expected, str) and "…" in expected:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{where}: {actual}"
        for key in expected:
            matches(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            matches(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert abs(actual - expected) <= 0.05, f"{where}: {actual} vs {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} vs {expected!r}"


def test_http_api_examples(
    serve: Callable[..., Server], trained_example: Callable[..., str]
) -> None:
    server = serve(trained_example("iris"))
    found = examples("http-api.md")
    assert len(found) >= 6
    for lang, command, expected in found:
        output = execute(lang, command, server.url)
        matches(json.loads(output), json.loads(expected), command.splitlines()[0])


def test_client_examples_per_language(
    serve: Callable[..., Server], trained_example: Callable[..., str]
) -> None:
    server = serve(trained_example("sentiment"))
    ran = set()
    for doc in ("clients/curl.md", "clients/javascript.md", "clients/python.md"):
        for lang, code, expected in examples(doc):
            output = execute(lang, code, server.url)
            matches(json.loads(output), json.loads(expected), f"{doc}: {code.splitlines()[0]}")
            ran.add(lang)
    assert ran == {"sh", "js", "python"}
