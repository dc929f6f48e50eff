"""A real ``shipml serve`` process answers the HTTP API of DESIGN §3, good input and bad."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SEED_IRIS_RECORD, Server, run_shipml

pytestmark = pytest.mark.slow
FIXTURES = REPO / "tests" / "fixtures"


def train_fixture(name: str, tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    project = tmp_path / name
    shutil.copytree(FIXTURES / name, project)
    run_shipml("train", cwd=project, env=env)
    return project


def assert_error(response: httpx.Response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word in error["message"]


def test_iris_seed_request_single_and_lists(iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model)
    with server.client() as client:
        single = client.post("/predict", json=SEED_IRIS_RECORD).json()
        assert single["label"] == "virginica"
        assert set(single["probabilities"]) == {"setosa", "versicolor", "virginica"}
        assert abs(sum(single["probabilities"].values()) - 1) < 1e-6
        three = client.post("/predict", json=[SEED_IRIS_RECORD] * 3).json()
        assert [r["label"] for r in three] == ["virginica"] * 3
        rows = client.post(
            "/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
        )
        assert [r["label"] for r in rows.json()] == ["setosa", "virginica"]
        assert (
            client.post("/predict", json={"inputs": [SEED_IRIS_RECORD]}).json()[0]["label"]
            == "virginica"
        )
        assert client.post("/predict", json=[]).json() == []
    # HEAD: GET's status and headers, no body, and the connection goes on (a body sent
    # after it would be read by the client as the start of the next answer)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"HEAD /info HTTP/1.1\r\nHost: t\r\n\r\nGET /health/live HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    head, live = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 0" not in head, head
    assert live.startswith(b"HTTP/1.1 200 ") and live.endswith(b'{"status":"alive"}'), live


def test_bad_requests_get_clear_errors(iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model, env={"SHIPML_MAX_BODY_BYTES": "2000"})
    with server.client() as client:
        assert_error(client.post("/predict", content=b'{"sepal_length": 1,'), 400, "invalid_json")
        missing = {k: v for k, v in SEED_IRIS_RECORD.items() if k != "petal_width"}
        assert_error(client.post("/predict", json=missing), 422, "invalid_input", "'petal_width'")
        wrong = {**SEED_IRIS_RECORD, "sepal_width": "wide"}
        assert_error(
            client.post("/predict", json=wrong),
            422,
            "invalid_input",
            "'sepal_width'",
            "must be a number",
        )
        assert_error(client.post("/predict", json="text"), 422, "invalid_input")
        assert_error(
            client.post("/predict", json=[SEED_IRIS_RECORD] * 40),
            413,
            "payload_too_large",
            "2000 bytes",
        )
        chunks = (b"[" + b"1," * 600 + b"1]" for _ in range(2))  # no Content-Length: streamed
        assert_error(client.post("/predict", content=chunks), 413, "payload_too_large")
        assert_error(client.get("/nowhere"), 404, "not_found", "/nowhere")
        not_allowed = client.get("/predict")
        assert_error(not_allowed, 405, "method_not_allowed")
        assert not_allowed.headers["allow"] == "POST"
        # after all that, the service still answers
        assert client.post("/predict", json=SEED_IRIS_RECORD).json()["label"] == "virginica"
        echoed = client.get("/health/live", headers={"X-Request-ID": "trace-42"})
        assert echoed.headers["x-request-id"] == "trace-42"


async def burst(port: int, bodies: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """POST each body to /predict at once: every connection is open before the first
    request is written, then all are written in one go, so that the requests reach the
    server together however loaded the machine is (an HTTP client sending as it connects
    can trickle them in one by one). Returns each answer's status, headers and body."""
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in bodies)
    )
    for (_, writer), body in zip(connections, bodies, strict=True):
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
    await asyncio.gather(*(writer.drain() for _, writer in connections))

    async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
        raw = await asyncio.wait_for(reader.read(), timeout=60)  # until the server closes
        head, _, body = raw.partition(b"\r\n\r\n")
        status, *fields = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        assert int(headers["content-length"]) == len(body), raw
        return int(status.split()[1]), headers, body

    try:
        return list(await asyncio.gather(*(answer(reader) for reader, _ in connections)))
    finally:
        for _, writer in connections:
            writer.close()


def test_two_hundred_concurrent_requests(iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model, "--workers", "2")
    deadline = time.monotonic() + 60
    while len(sockets_on(server.port, "0A")) < 3:  # both workers ready and listening
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.1)
    setosa = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    expected = ["virginica" if i % 2 else "setosa" for i in range(200)]
    bodies = [json.dumps(SEED_IRIS_RECORD if i % 2 else setosa).encode() for i in range(200)]
    results = asyncio.run(burst(server.port, bodies))
    assert [status for status, _, _ in results] == [200] * 200, results[:3]
    assert [json.loads(body)["label"] for _, _, body in results] == expected
    assert len({headers["x-request-id"] for _, headers, _ in results}) == 200
    # Concurrent one-row requests were coalesced: 200 rows in fewer model calls.
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in httpx.get(f"{server.url}/metrics").text.splitlines()
        if line.startswith("shipml_batch_size_")
    }
    assert metrics["shipml_batch_size_sum"] == 200
    assert metrics["shipml_batch_size_count"] < 200


def sockets_on(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (0A listen, 01 established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def test_each_worker_listens_and_connections_spread(
    iris_model: str, serve: Callable[..., Server]
) -> None:
    server = serve(iris_model, "--workers", "2")
    port = int(server.url.rsplit(":", 1)[1])
    master = server.master
    deadline = time.monotonic() + 30
    while len(sockets_on(port, "0A")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # the second worker may still be loading: it listens once ready
    workers = server.workers()
    listening = sockets_on(port, "0A")
    assert len(workers) == 2 and len(listening) == 3
    # the master's socket, which outlives any worker, and one of its own per ready worker
    shared = listening & socket_inodes(master)
    assert len(shared) == 1
    own = [(listening & socket_inodes(pid)) - shared for pid in workers]
    assert [len(sockets) for sockets in own] == [1, 1] and own[0] != own[1]
    # 32 keep-alive connections, as a load balancer or a benchmark would open them
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(32)]
    try:
        for client in clients:
            assert client.post("/predict", json=SEED_IRIS_RECORD).status_code == 200
        established = sockets_on(port, "01")
        held = [len(established & socket_inodes(pid)) for pid in workers]
        assert sum(held) == 32
        assert min(held) > 0, held  # all on one worker has odds of 2 in 2**32
    finally:
        for client in clients:
            client.close()


def test_api_keys(iris_model: str, serve: Callable[..., Server], tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("file-key\n")
    server = serve(
        iris_model, env={"SHIPML_API_KEYS": "env-key, other", "SHIPML_API_KEYS_FILE": str(key_file)}
    )
    with server.client() as client:
        assert_error(client.post("/predict", json=SEED_IRIS_RECORD), 401, "unauthorized", "API key")
        wrong = client.post(
            "/predict", json=SEED_IRIS_RECORD, headers={"Authorization": "Bearer nope"}
        )
        assert_error(wrong, 401, "unauthorized", "not valid")
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/info", headers={"X-API-Key": "wrong"}).status_code == 401
        for headers in (
            {"Authorization": "Bearer env-key"},
            {"X-API-Key": "other"},
            {"Authorization": "bearer file-key"},
        ):
            assert (
                client.post("/predict", json=SEED_IRIS_RECORD, headers=headers).status_code == 200
            )
        assert client.get("/health/ready").status_code == 200  # probes stay open
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/metrics").status_code == 401


def test_not_ready_until_loaded(serve: Callable[..., Server], tmp_path: Path) -> None:
    train_fixture("echo", tmp_path, env={"ECHO_SETUP_DELAY": "4"})
    server = serve("echo@latest", wait=False)
    with server.client() as client:
        for _ in range(100):  # the worker answers liveness while setup() still runs
            try:
                if client.get("/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        assert_error(client.get("/health/ready"), 503, "not_ready")
        assert client.get("/v2/health/ready").status_code == 503
        busy = client.post("/predict", json={"text": "hi"})
        assert_error(busy, 503, "not_ready")
        assert busy.headers["retry-after"] == "1"
        server.wait_ready()
        assert client.post("/predict", json={"text": "hi"}).json() == {"length": 2, "text": "hi"}


def test_model_failure_is_500_and_the_worker_survives(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    train_fixture("echo", tmp_path)
    server = serve("echo@latest")
    with server.client() as client:
        failed = client.post("/predict", json={"text": "boom"})
        assert_error(failed, 500, "model_error", "RuntimeError", failed.headers["x-request-id"])
        assert "Traceback" not in failed.text
        assert client.post("/predict", json=[{"text": "a"}, {"text": "bc"}]).json() == [
            {"length": 1, "text": "a"},
            {"length": 2, "text": "bc"},
        ]
    log = server.log.read_text()
    assert failed.headers["x-request-id"] in log and "boom requested" in log


def test_unchanged_azureml_score_py(serve: Callable[..., Server], tmp_path: Path) -> None:
    project = train_fixture("azureml", tmp_path)
    from sklearn.datasets import load_diabetes

    x, _ = load_diabetes(return_X_y=True)
    server = serve("diabetes@latest", cwd=project)
    with server.client() as client:
        answer = client.post("/predict", json={"data": x[:2].tolist()})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) == 2 and all(isinstance(v, float) for v in answer.json())
        broken = client.post("/predict", json={"rows": []})  # run() raises KeyError
        assert_error(broken, 500, "model_error", "KeyError")
        assert client.get("/info").json()["contract"] == "azureml"


def test_info_openapi_metrics_and_oip(iris_model: str, serve: Callable[..., Server]) -> None:
    server = serve(iris_model)
    with server.client() as client:
        info = client.get("/info").json()
        assert info["ref"] == "iris:1" and info["digest"].startswith("sha256:")
        assert list(info["input_schema"]["properties"]) == list(SEED_IRIS_RECORD)
        assert info["libraries"]["scikit-learn"] and info["metrics"]["accuracy"] > 0.9
        document = client.get("/openapi.json").json()
        assert document["openapi"] == "3.1.0"
        assert "sepal_length" in document["components"]["schemas"]["Record"]["properties"]
        client.post("/predict", json=SEED_IRIS_RECORD)
        metrics = client.get("/metrics").text
        assert 'shipml_requests_total{method="POST",route="/predict",status="200"}' in metrics
        assert 'shipml_model_info{digest="' in metrics and "shipml_batch_size_bucket" in metrics
        meta = client.get("/v2/models/iris").json()
        assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
        infer = client.post(
            "/v2/models/iris/infer",
            json={
                "id": "r1",
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [1, 4],
                        "datatype": "FP64",
                        "data": list(SEED_IRIS_RECORD.values()),
                    }
                ],
            },
        ).json()
        assert infer["id"] == "r1" and infer["outputs"][0]["data"] == ["virginica"]
        named = client.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [
                    {"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                    for k, v in SEED_IRIS_RECORD.items()
                ]
            },
        ).json()
        assert named["outputs"][1]["shape"] == [1, 3]
        assert client.get("/v2/models/other").status_code == 404
        page = client.get("/")
        assert (
            page.status_code == 200
            and "script-src 'self'" in page.headers["content-security-policy"]
        )


def test_a_score_py_that_cannot_load_stops_serve_with_one_clear_error(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    project = tmp_path / "broken"
    (project / "model").mkdir(parents=True)
    (project / "model" / "other.pkl").write_bytes(b"not the model")
    (project / "score.py").write_text(
        "import os, joblib\n"
        "def init():\n"
        "    global model\n"
        "    model = joblib.load(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model.pkl'))\n"
        "def run(data):\n"
        "    return data\n"
    )
    (project / "shipml.yaml").write_text("name: broken\nscoring: score.py\nmodel: model/\n")
    assert "without training" in run_shipml("train", cwd=project).stdout
    server = serve("broken@latest", wait=False, cwd=project)
    assert server.process.wait(timeout=120) == 1
    log = server.log.read_text()
    last = log.strip().splitlines()[-1]
    assert last.startswith("error: the model could not be loaded (traceback above): score.py")
    assert "FileNotFoundError" in last and "model/other.pkl" in last
    assert "Traceback (most recent call last)" in log  # the log above has the traceback
    assert log.count("Traceback (most recent call last)") == 1  # and not a second one
    predicted = run_shipml("predict", "broken@latest", "-i", "{}", check=False, cwd=project)
    assert predicted.returncode == 1 and "Traceback" not in predicted.stderr
    assert predicted.stderr.strip().startswith("error: score.py failed in init()")
