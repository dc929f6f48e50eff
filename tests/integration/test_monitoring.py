"""Monitoring end to end: real ``shipml serve`` processes log a bounded load whose second
half is shifted, ``shipml monitor report`` ranks the shifted feature first, the report
opens in headless Chromium; the same against Azurite; a store that is down and a worker
killed mid-interval lose records, never requests nor files.

One store and one set of servers per module (trained and started in parallel).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipml.monitoring import reading
from shipml.store import Store
from tests import trained
from tests.conftest import IRIS_FEATURES, REPO, SHIPML, Server, free_port, run_shipml, stop_all

pytestmark = pytest.mark.slow
AZURITE_PORT = os.environ.get("SHIPML_TEST_AZURITE_PORT", "10000")
AZURITE_KEY = (  # Azurite's published development account: a well-known key, not a secret
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
MONITOR = {
    "SHIPML_MONITOR": "true",
    "SHIPML_MONITOR_INTERVAL": "1",
    "SHIPML_MONITOR_SAMPLE_RATE": "1",  # every request: the counts below are exact
}
IRIS_REQUESTS = 400
TEXT_REQUESTS = 240


def azurite(port: str = AZURITE_PORT) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


class Place:
    """The module's store, cache and servers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = str(root / "store")
        self.env = {**os.environ, "SHIPML_STORE": self.store, "SHIPML_CACHE": str(root / "cache")}
        self.servers: list[Server] = []
        self.kill_log = str(root / "killed-log")  # the killed-worker test's own payload log

    def train(self, example: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        project = self.root / f"{example}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(REPO / "examples" / example, project)
        return subprocess.Popen(
            [SHIPML, "train"],
            cwd=project,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def serve(self, model: str, *args: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = self.root / f"serve-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [SHIPML, "serve", model, "--port", str(port), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**self.env, **MONITOR, **(env or {})},
                start_new_session=True,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        self.servers.append(server)
        return server


def finished(runs: list[subprocess.Popen[str]]) -> None:
    for run in runs:
        output = run.communicate(timeout=300)[0]
        assert run.returncode == 0, output


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    here = Place(tmp_path_factory.mktemp("monitoring"))
    shared = trained.shared_folder(tmp_path_factory)  # trained once per run (tests/trained.py)
    for example in ("iris", "sentiment"):
        trained.copy_into(Path(here.store), example, shared, SHIPML)
    yield here
    stop_all(here.servers)


@pytest.fixture(scope="module")
def servers(place: Place) -> dict[str, Server]:
    """Every server of the module, started at once (each loads its model in parallel)."""
    unreachable = azurite(str(free_port()))  # nothing listens there: the store is down
    started = {
        "iris": place.serve("iris:1", "--workers", "2"),
        "sentiment": place.serve("sentiment:1"),
        "killed": place.serve(
            "iris:1",
            "--workers",
            "2",
            env={"SHIPML_MONITOR_INTERVAL": "5", "SHIPML_MONITOR_STORE": place.kill_log},
        ),
        "down": place.serve(
            "iris:1",
            env={
                "SHIPML_MONITOR_STORE": "az://unreachable/models",
                "SHIPML_MONITOR_MAX_RECORDS": "50",
                "AZURE_STORAGE_CONNECTION_STRING": unreachable,
            },
        ),
    }
    for server in started.values():
        server.wait_ready(timeout=180)
    return started


def iris_load(count: int, shift: float) -> list[dict[str, float]]:
    """Iris-like records (training rows with a little noise); the second half has
    ``shift`` added to petal_length."""
    from sklearn.datasets import load_iris

    rows = load_iris().data
    rng = random.Random(7)
    records = []
    for i in range(count):
        row = [float(v) + rng.gauss(0, 0.05) for v in rows[rng.randrange(len(rows))]]
        if i >= count // 2:
            row[2] += shift
        records.append(dict(zip(IRIS_FEATURES, [round(v, 2) for v in row], strict=True)))
    return records


def send(url: str, bodies: list[Any], concurrency: int = 16) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(body: Any) -> httpx.Response:
                async with gate:
                    return await client.post("/predict", json=body)

            return await asyncio.gather(*(one(body) for body in bodies))

    return asyncio.run(run())


def metric(url: str, name: str, **labels: str) -> float:
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    )
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(wanted + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(condition: Any, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def report(place: Place, model: str, out: Path, *extra: str, store: str | None = None,
           env: dict[str, str] | None = None) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:  # fmt: skip
    html, data = out / "report.html", out / "report.json"
    done = run_shipml(
        "monitor", "report", model, "--since", "1h", "--out", str(html), "--json", str(data),
        "--store", store or place.store, *extra, check=False, env={**place.env, **(env or {})},
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stdout + done.stderr
    return json.loads(data.read_text()), done


def test_iris_drift_is_found_and_ranked_first(
    place: Place, servers: dict[str, Server], tmp_path: Path
) -> None:
    server = servers["iris"]
    answers = send(server.url, iris_load(IRIS_REQUESTS, shift=3.0))
    assert all(r.status_code == 200 for r in answers)
    wait_for(
        lambda: metric(server.url, "shipml_monitor_records_written_total") >= IRIS_REQUESTS,
        what="every logged request written",
    )
    assert metric(server.url, "shipml_monitor_requests_total") == IRIS_REQUESTS
    out_of_range = {"field": "petal_length", "issue": "out_of_range"}
    assert metric(server.url, "shipml_input_issues_total", **out_of_range) > 50
    assert metric(server.url, "shipml_prediction_score_count") == IRIS_REQUESTS

    found, done = report(place, "iris:1", tmp_path, "--fail-on-drift", "0.2")
    assert done.returncode == 3 and "petal_length" in done.stdout  # CI can act on it
    assert found["summary"]["requests"] == IRIS_REQUESTS and not found["summary"]["damaged_files"]
    top = found["features"][0]
    assert top["name"] == "petal_length" and top["drift"]["level"] == "drift"
    assert top["out_of_range"] > 0.2
    for other in found["features"][1:]:
        assert other["drift"]["level"] != "drift", other
    label = next(p for p in found["predictions"] if p["name"] == "label")
    assert label["against"].startswith("the model's answers to the training sample")
    assert sum(b["requests"] for b in found["volume"]["buckets"]) == IRIS_REQUESTS
    calm, done = report(place, "iris:1", tmp_path, "--fail-on-drift", "50")
    assert done.returncode == 0 and calm["summary"]["requests"] == IRIS_REQUESTS


@pytest.mark.browser
def test_the_report_opens_offline_in_chromium(
    place: Place, servers: dict[str, Server], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_playground import CHROMIUM, FLAGS

    if not (place.root / "store" / "monitoring" / "iris").exists():
        send(servers["iris"].url, iris_load(200, shift=3.0))
        time.sleep(2.5)
    report(place, "iris:1", tmp_path)
    page_file = tmp_path / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1150, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        assert "iris:1: monitoring report" in (page.text_content("h1") or "")
        assert page.locator("figure svg").count() >= 4
        assert page.locator("table tr").nth(1).locator("td").first.text_content() == "petal_length"
        embedded = json.loads(page.text_content("#report-data") or "{}")
        assert embedded["features"][0]["name"] == "petal_length"
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 20_000
    assert errors == []
    assert requests == [page_file.as_uri()]  # nothing fetched: no font, script or image


def sentences(count: int) -> list[str]:
    path = REPO / "examples" / "sentiment" / "data" / "sentiment.tsv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = [row["text"] for row in csv.DictReader(handle, delimiter="\t")]
    return random.Random(3).sample(rows, count)


def made_up(text: str, rng: random.Random) -> str:
    """The same sentence with every other word replaced by a word nobody trained on."""
    words = text.split()
    return " ".join(
        w if i % 2 else "".join(rng.choice("qxzjvk") for _ in range(len(w)))
        for i, w in enumerate(words)
    )


def test_sentiment_unseen_words_rank_first(
    place: Place, servers: dict[str, Server], tmp_path: Path
) -> None:
    server = servers["sentiment"]
    rng = random.Random(5)
    texts = sentences(TEXT_REQUESTS)
    half = TEXT_REQUESTS // 2
    bodies = [{"text": t} for t in texts[:half]] + [{"text": made_up(t, rng)} for t in texts[half:]]
    answers = send(server.url, bodies)
    assert all(r.status_code == 200 for r in answers)
    wait_for(
        lambda: metric(server.url, "shipml_monitor_records_written_total") >= TEXT_REQUESTS,
        what="every logged request written",
    )
    assert metric(server.url, "shipml_predictions_total", label="positive") > 0
    found, _ = report(place, "sentiment:1", tmp_path)
    names = [f["name"] for f in found["features"]]
    assert names[0] == "text.unseen_share", names
    assert found["features"][0]["drift"]["level"] == "drift"
    words = next(f for f in found["features"] if f["name"] == "text.words")
    assert words["drift"]["level"] != "drift"  # as many words as before
    score = next(p for p in found["predictions"] if p["name"] == "score")
    assert score["against"].startswith("the first half of the window")


def test_a_store_that_is_down_drops_records_never_requests(servers: dict[str, Server]) -> None:
    server = servers["down"]
    answers = send(server.url, iris_load(300, shift=0.0))
    assert [r.status_code for r in answers] == [200] * 300

    def dropped() -> float:
        return sum(
            metric(server.url, "shipml_monitor_records_dropped_total", reason=reason)
            for reason in ("buffer_full", "write_failed")
        )

    # Each worker's first write hangs in the Azure client's retries (or fails): what comes
    # after it waits in a bounded buffer (SHIPML_MONITOR_MAX_RECORDS=50) and the rest is
    # dropped. A worker holds at most 50 in the write and 50 in the buffer.
    held = len(server.workers()) * 2 * 50
    wait_for(lambda: dropped() >= 300 - held, what="the dropped records counted")
    assert metric(server.url, "shipml_monitor_records_written_total") == 0
    assert metric(server.url, "shipml_monitor_requests_total") >= 50  # live signals go on
    started = time.monotonic()
    assert httpx.post(f"{server.url}/predict", json=iris_load(1, 0)[0]).status_code == 200
    assert time.monotonic() - started < 5


def test_a_killed_worker_leaves_complete_files_and_the_rest_is_read(
    place: Place, servers: dict[str, Server], tmp_path: Path
) -> None:
    server = servers["killed"]
    before = server.workers()
    assert len(before) == 2
    first = send(server.url, iris_load(150, shift=0.0))
    os.kill(before[0], signal.SIGKILL)  # mid-interval (5 s): what it held is lost
    wait_for(
        lambda: len(set(server.workers()) - {before[0]}) == 2,
        what="gunicorn replaced the worker",
    )
    # the new worker answers 503 until its model is loaded; each fresh connection may
    # land on either worker (SO_REUSEPORT)
    wait_for(
        lambda: all(httpx.get(f"{server.url}/health/ready").status_code == 200 for _ in range(16)),
        what="both workers ready",
    )
    second = send(server.url, iris_load(150, shift=0.0))
    assert all(r.status_code == 200 for r in first + second)
    server.stop()  # SIGTERM: the workers alive write what they hold
    folder = Path(place.kill_log) / "monitoring" / "iris" / "1"
    lines = 0
    for part in folder.rglob("*.jsonl.gz"):
        lines += sum(1 for line in gzip.decompress(part.read_bytes()).splitlines() if line)
    # the second load at least; not what the killed worker held since its last file
    assert 150 <= lines <= 300
    found, _ = report(place, "iris:1", tmp_path, "--monitor-store", place.kill_log)
    assert found["summary"]["damaged_files"] == []
    assert found["summary"]["requests"] == lines


@pytest.mark.azure
def test_the_same_against_azurite(
    place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"az://m{uuid.uuid4().hex[:12]}/models"
    env = {"SHIPML_STORE": url, "AZURE_STORAGE_CONNECTION_STRING": azurite()}
    finished([place.train("iris", env)])
    server = place.serve("iris:1", "--store", url, "--workers", "2", env=env)
    server.wait_ready(timeout=180)
    answers = send(server.url, iris_load(300, shift=3.0))
    assert all(r.status_code == 200 for r in answers)
    wait_for(
        lambda: metric(server.url, "shipml_monitor_records_written_total") >= 300,
        what="every logged request written to Azurite",
    )
    found, _ = report(place, "iris:1", tmp_path, store=url, env=env)
    assert found["store"] == url and found["summary"]["requests"] == 300
    assert found["features"][0]["name"] == "petal_length"
    removed = run_shipml("models", "rm", "iris:1", "--yes", "--store", url, env=env).stdout
    assert "Removed its payload log" in removed
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite())
    assert reading.part_keys(Store(url).backend, "iris", 1) == []
