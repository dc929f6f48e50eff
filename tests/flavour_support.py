"""Helpers for the flavour tests: a store per module, in-process apps, JSON records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shipml.serving.app import App, create_app
from shipml.serving.settings import ServeSettings
from shipml.store import Store, parse_reference


@contextmanager
def using_store(folder: Path) -> Iterator[Store]:
    """``save_model`` publishes into ``folder`` inside the block (module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPML_STORE", str(folder))
        patch.delenv("SHIPML_OUTPUT", raising=False)
        yield Store(str(folder))


def app_for(store: Store, ref: str, **settings: Any) -> App:
    local = store.fetch(parse_reference(ref))
    app = create_app(ServeSettings(model=ref, **settings), lambda: local)
    app.service.load_now()
    return app


def post(app: App, bodies: list[Any]) -> list[httpx.Response]:
    """POST each body to ``/predict`` concurrently (they share model calls)."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))

    return asyncio.run(go())


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON records (missing values as null, dates as ISO-8601)."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))


def probabilities(answers: list[dict[str, Any]], classes: list[Any]) -> np.ndarray:
    return np.array([[a["probabilities"][str(c)] for c in classes] for a in answers])


def error(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid_input"
    return str(body["message"])
