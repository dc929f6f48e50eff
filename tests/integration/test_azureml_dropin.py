"""Differential tests: every collected Azure ML scoring script, unchanged, under Microsoft's
server and under ``shipml serve``, with the same model files and the same request bytes.

For each case of tests/fixtures/azureml_scripts: the model files are built once, the case is
registered the way a user would (a project with ``scoring:`` and ``model:`` in shipml.yaml, then
``shipml train``), and both servers are started, all cases at once, for the whole module. Every
valid request must answer 200 on both with the same answer (the same bytes, or JSON equal with
numbers within 1e-9 relative); every invalid one must get a 4xx JSON error from shipml.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import azureml_reference as reference
from tests import forkserver
from tests.conftest import BUILD_CACHE, FORKSERVER_VARIABLE, PRELOAD, REPO, SHIPML

# The module's servers start in its first test's setup: on two cores, ~10 s of CPU per case.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# AZUREML_CASES=a,b runs only those cases (development); all of them otherwise.
CASES = [
    case
    for case in reference.cases()
    if not os.environ.get("AZUREML_CASES") or case.name in os.environ["AZUREML_CASES"].split(",")
]
RELATIVE = 1e-9
# Seconds a server may take to be ready: all cases start at once on two shared cores.
READY_WITHIN = 300.0
# Cases whose servers start at the same time (all of them unless told otherwise: their starts
# overlap their waits); all stay up, shared, until the module ends.
STARTING = int(os.environ.get("AZUREML_STARTING", "0")) or len(CASES)
BUILD_FAILURES: dict[Path, str] = {}  # case folder -> build_model.py's traceback
WORK: list[Path] = [Path()]  # the module's folder: its store, cache and projects
# Built into serve images too: @rawhttp with a streamed AMLResponse, and pandas
# inference_schema decorators; both load from a model subfolder.
IMAGE_CASES = ["examples_streaming_rawhttp", "examples_iris_pandas"]
BASE = os.environ.get("SHIPML_TEST_BASE_IMAGE", "shipml-test/python:3.11-slim")
# Scripts calling azureml-core's v1 Model.get_model_path, AutoML's, those collecting data with
# azureml-monitoring and MLflow-model scripts are served from a venv that has azureml-core,
# azureml-monitoring and mlflow-skinny (scripts/azureml-core-venv.sh): it conflicts with the
# project's.
SECOND_VENV_FEATURES = {
    "needs-azureml-core",
    "needs-automl-core",
    "needs-azureml-monitoring",
    "needs-mlflow",
}
AZURECORE_SHIPML = (
    Path(os.environ.get("SHIPML_AZURECORE_VENV", REPO / ".venv-azureml-core")) / "bin" / "shipml"
)
# That venv's `shipml`s fork from a fork server of its own while the module runs (as the
# project's do from the worker's; tests/forkserver.py).
AZURECORE_VARIABLE = "SHIPML_TEST_FORKSERVER_AZURECORE"
AZURECORE_FORKED = forkserver.wrapper(
    REPO / ".cache" / "forkserver" / "shipml-azureml-core",
    str(AZURECORE_SHIPML.with_name("python")),
    str(AZURECORE_SHIPML),
    AZURECORE_VARIABLE,
)
AZURECORE_PRELOAD = [
    name for name in PRELOAD if not name.startswith(("adlfs", "azure.", "pyarrow"))
]


def shipml_for(case: Path) -> str:
    features = set(reference.source(case).get("features", []))
    if features & SECOND_VENV_FEATURES:
        return str(AZURECORE_FORKED)
    return SHIPML


@contextlib.contextmanager
def azurecore_forked() -> Iterator[None]:
    """While inside, the azureml-core venv's fork server runs (when that venv exists)."""
    python = AZURECORE_SHIPML.with_name("python")
    if not python.exists() or os.environ.get(FORKSERVER_VARIABLE) is None:
        yield  # missing: the case says so; fork servers off: everything runs for real
        return
    server = forkserver.ForkServer(str(python), AZURECORE_PRELOAD)
    os.environ[AZURECORE_VARIABLE] = server.socket
    try:
        yield
    finally:
        del os.environ[AZURECORE_VARIABLE]
        server.stop()


@dataclass
class Pair:
    case: Path
    reference_url: str = ""
    shipml_url: str = ""
    reference_log: Path | None = None
    shipml_log: Path | None = None
    error: str | None = None  # why this case's servers did not start

    def log(self) -> str:
        return self.shipml_log.read_text()[-3000:] if self.shipml_log else ""


def project_for(case: Path, model_dir: Path, folder: Path) -> Path:
    """The project a user would write for this script: the script, its model files, and
    shipml.yaml naming them (the model files are registered as they are, no training)."""
    meta = reference.source(case)
    folder.mkdir(parents=True)
    # The code folder as published (the script and what lies beside it), at the top of the
    # project or, with SOURCE.json "code_folder", in that subfolder as Azure ML deploys it.
    code = folder / meta.get("code_folder", ".")
    shutil.copytree(
        case,
        code,
        ignore=lambda _d, names: [n for n in names if n in reference.CORPUS_FILES],
        dirs_exist_ok=True,
    )
    shutil.copytree(model_dir, folder, dirs_exist_ok=True)
    tops = sorted(p.name + ("/" if p.is_dir() else "") for p in model_dir.iterdir())
    (folder / "requirements.txt").write_text("\n".join(model_libraries()) + "\n")
    lines = [
        f"name: {model_name(case)}",
        f"scoring: {(Path(meta.get('code_folder', '.')) / meta['entry_script']).as_posix()}",
        "environment: requirements.txt",
    ]
    if tops:
        lines.append("model: [" + ", ".join(tops) + "]")
    (folder / "shipml.yaml").write_text("\n".join(lines) + "\n")
    return folder


def model_libraries() -> list[str]:
    """The project's requirements: the libraries the model files were built with."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("numpy", "scipy", "scikit-learn", "pandas")]


def model_name(case: Path) -> str:
    return case.name.lower().replace("_", "-")


def prepare(case: Path, work: Path, processes: list[subprocess.Popen[bytes]]) -> Pair:
    try:
        return start_pair(case, work, processes)
    except Exception as error:  # one broken case must not stop the others
        return Pair(case, error=f"{type(error).__name__}: {error}")


def start_pair(case: Path, work: Path, processes: list[subprocess.Popen[bytes]]) -> Pair:
    """Start Microsoft's server on the case's model files (built by the fixture), register
    them with `shipml train` as a user would and start `shipml serve`; both servers join
    ``processes`` as soon as they start (so they are stopped whatever happens next)."""
    pair = Pair(case)
    model_dir = work / case.name / "model"  # built by the fixture (reference.build_models)
    if case.resolve() in BUILD_FAILURES:
        pair.error = "build_model.py failed:\n" + BUILD_FAILURES[case.resolve()]
        return pair
    project = project_for(case, model_dir, work / case.name / case.name)
    ref_port, own_port = reference.free_port(), reference.free_port()
    pair.reference_url, pair.shipml_url = (
        f"http://127.0.0.1:{ref_port}",
        f"http://127.0.0.1:{own_port}",
    )
    pair.reference_log = work / case.name / "reference.log"
    pair.shipml_log = work / case.name / "shipml.log"
    reference_server = reference.start_reference(case, model_dir, ref_port, pair.reference_log)
    processes.append(reference_server)
    env = {**os.environ, "SHIPML_STORE": str(work / "store"), "SHIPML_CACHE": str(work / "cache")}
    shipml = shipml_for(case)
    if shipml == str(AZURECORE_FORKED) and not AZURECORE_SHIPML.exists():
        pair.error = (
            f"{AZURECORE_SHIPML} is missing: run scripts/azureml-core-venv.sh (make test does)"
        )
        return pair
    with pair.shipml_log.open("wb") as out:
        trained = subprocess.run(
            [shipml, "train"], cwd=project, stdout=out, stderr=out, check=False, env=env
        )
        if trained.returncode != 0:
            pair.error = "shipml train failed:\n" + pair.log()
            return pair
    serve = [shipml, "serve", f"{model_name(case)}@latest", "--port"]
    serve_env = {**env, "SHIPML_WORKERS": "1"}
    own = start_own(serve, own_port, project, pair.shipml_log, serve_env)
    processes.append(own)
    try:
        reference.wait_ready(ref_port, reference_server, timeout=READY_WITHIN)
    except RuntimeError as error:
        pair.error = f"{error}\n{pair.reference_log.read_text()[-3000:]}"
        return pair
    pair.error = wait_shipml(pair.shipml_url, own, pair.shipml_log)
    for _ in range(2):  # a free port can be taken by another process before serve binds it
        if pair.error is None or "is already in use" not in pair.error:
            break
        own_port = reference.free_port()
        pair.shipml_url = f"http://127.0.0.1:{own_port}"
        own = start_own(serve, own_port, project, pair.shipml_log, serve_env)
        processes.append(own)
        pair.error = wait_shipml(pair.shipml_url, own, pair.shipml_log)
    return pair


def start_own(
    serve: list[str], port: int, project: Path, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``shipml serve`` on ``port``, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [*serve, str(port)],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def wait_shipml(url: str, process: subprocess.Popen[bytes], log: Path) -> str | None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"shipml serve exited:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return f"shipml serve was not ready:\n{log.read_text()[-4000:]}"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Pair]]:
    """Both servers of every case, started together and shared by the module's tests."""
    work = WORK[0] = tmp_path_factory.mktemp("azureml-dropin")
    started = time.monotonic()
    processes: list[subprocess.Popen[bytes]] = []
    # Microsoft's servers fork from the reference venv's fork server (tests/forkserver.py),
    # which outlives them: they stop gracefully first.
    with reference.forked(), azurecore_forked():
        try:
            # Every case's model files first, in one process (imports once, not once per case).
            builds = [(case, work / case.name / "model") for case in CASES]
            BUILD_FAILURES.update(reference.build_models(builds))
            print(f"\n{len(CASES)} models built in {time.monotonic() - started:.1f}s")
            with ThreadPoolExecutor(max_workers=min(len(CASES), STARTING) or 1) as pool:
                starts = pool.map(lambda c: prepare(c, work, processes), CASES)
                pairs = {pair.case.name: pair for pair in starts}
            print(f"\n{len(pairs)} cases started in {time.monotonic() - started:.1f}s")
            yield pairs
        finally:  # all at once: each waits for its server's graceful shutdown
            with ThreadPoolExecutor(max_workers=len(processes) or 1) as pool:
                list(pool.map(reference.stop, processes))


def close(a: Any, b: Any, where: str = "") -> str | None:
    """None when equal (numbers to 1e-9 relative), else where they differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a is b else f"{where}: {a!r} != {b!r}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) and math.isnan(b):
            return None
        return None if math.isclose(a, b, rel_tol=RELATIVE, abs_tol=0) else f"{where}: {a} != {b}"
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            if (found := close(a[key], b[key], f"{where}.{key}")) is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (found := close(x, y, f"{where}[{i}]")) is not None:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_valid_requests_answer_as_under_microsofts_server(
    servers: dict[str, Pair], case: str
) -> None:
    pair = servers[case]
    assert pair.error is None, pair.error
    requests = reference.valid_requests(pair.case)
    assert requests, f"{case} has no valid request"
    for request in requests:
        label = f"{case} {request['name']}"
        # Both at once: some scripts take seconds per request (a streamed answer).
        with ThreadPoolExecutor(max_workers=2) as pool:
            mine = pool.submit(reference.send, f"{pair.shipml_url}/score", request)
            ref_status, ref_headers, ref_body = reference_answer(pair, request)
            status, headers, body = mine.result()
        expected = request.get("status", 200)  # a script's own AMLResponse may answer 4xx
        assert ref_status == expected, f"{label}: Microsoft answered {ref_status} {ref_body!r}"
        assert status == expected, f"{label}: shipml answered {status} {body!r}\n{pair.log()}"
        assert headers.get("content-type") == ref_headers.get("content-type"), label
        assert microsofts(headers) == microsofts(ref_headers), label
        if body != ref_body:
            difference = close(parsed(ref_body), parsed(body))
            assert difference is None, f"{label}: {difference}\n{ref_body!r}\n{body!r}"


def microsofts(headers: dict[str, str]) -> dict[str, str]:
    """Microsoft's own headers of an answer (request ids, run() failed, run()'s time), with
    what differs by nature made comparable: an id the server drew itself, run()'s duration
    (its format only), and the server's name and version (``x-ms-server-version``)."""
    view = {k: v for k, v in headers.items() if k.startswith("x-ms-") or k == "traceid"}
    view.pop("x-ms-server-version", None)
    if "x-ms-run-fn-exec-ms" in view:
        elapsed = view["x-ms-run-fn-exec-ms"]
        view["x-ms-run-fn-exec-ms"] = "<ms>" if re.fullmatch(r"\d+\.\d{3}", elapsed) else elapsed
    if "x-ms-request-id" in view and view["x-ms-request-id"] == headers.get("x-request-id"):
        view["x-ms-request-id"] = "<the request's x-request-id>"
    return view


def with_headers(request: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {**request, "headers": {**request.get("headers", {}), **headers}}


MICROSOFT_INTERNAL = b"An unexpected internal error occurred"


def gzipped(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its body gzip-compressed and ``Content-Encoding: gzip``: the body is
    ``run()``'s as it came, under Microsoft's server and under shipml's ``/score``."""
    if "body" in request:
        body = json.dumps(request["body"]).encode()
    elif "body_text" in request:
        body = request["body_text"].encode()
    else:
        body = base64.b64decode(request.get("body_base64", ""))
    rest = {k: v for k, v in request.items() if k not in ("body", "body_text", "body_base64")}
    packed = {**rest, "body_base64": base64.b64encode(gzip.compress(body, mtime=0)).decode()}
    return with_headers(packed, **{"Content-Encoding": "gzip"})


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_request_ids_and_run_headers_are_microsofts(servers: dict[str, Pair], case: str) -> None:
    """The tracing ids Microsoft's server answers with (x-ms-request-id, x-ms-client-request-id,
    TraceId, and its 431 for ids over 100 characters) and its headers about run()
    (x-ms-run-function-failed, x-ms-run-fn-exec-ms), on /score and /swagger.json."""
    pair = servers[case]
    assert pair.error is None, pair.error
    # the quickest valid request: a streaming script sleeps 3 s per item it answers
    valid = min(reference.valid_requests(pair.case), key=lambda r: len(json.dumps(r)))
    probes = {
        "client id, trace id": with_headers(
            valid, **{"x-ms-client-request-id": "client-1", "TraceId": "trace-9"}
        ),
        "own x-request-id": with_headers(valid, **{"x-request-id": "request-7"}),
        "legacy x-ms-request-id": with_headers(valid, **{"x-ms-request-id": "legacy-3"}),
        "both ids": with_headers(
            valid, **{"x-ms-request-id": "legacy-3", "x-ms-client-request-id": "client-1"}
        ),
        "client id too long": with_headers(valid, **{"x-ms-client-request-id": "c" * 101}),
        "request id too long": with_headers(valid, **{"x-request-id": "r" * 101}),
        "client id at the limit": with_headers(valid, **{"x-ms-client-request-id": "c" * 100}),
        "options": {"method": "OPTIONS"},
        "put": {"method": "PUT", "body_text": "{}"},
        "gzip body": gzipped(valid),
    }
    for name, request in probes.items():
        label = f"{case} {name}"
        with ThreadPoolExecutor(max_workers=2) as pool:  # both at once
            mine = pool.submit(reference.send, f"{pair.shipml_url}/score", request)
            ref_status, ref_headers, ref_body = reference.send(
                f"{pair.reference_url}/score", request
            )
            status, headers, body = mine.result()
        if name == "gzip body" and ref_status == 500 and MICROSOFT_INTERNAL in ref_body:
            # The one difference (docs/scoring.md, "Errors"): an @input_schema body that is
            # not UTF-8 fails inside Microsoft's server; shipml names it as the client's.
            assert status == 400 and b"could not be decoded as JSON" in body, label
            continue
        assert status == ref_status, f"{label}: {status} {body!r}, Microsoft {ref_status}"
        assert microsofts(headers) == microsofts(ref_headers), label
        if status == 431:
            assert json.loads(body) == json.loads(ref_body), label
    for path in ("/swagger.json", "/swagger.json?version=3"):
        request = {"method": "GET", "headers": {"x-ms-client-request-id": "client-2"}}
        _, ref_headers, _ = reference.send(f"{pair.reference_url}{path}", request)
        _, headers, _ = reference.send(f"{pair.shipml_url}{path}", request)
        assert microsofts(headers) == microsofts(ref_headers), f"{case} {path}"


ANSWERS: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {}


def reference_answer(pair: Pair, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Microsoft's answer to a valid request, asked once per module (the image test
    compares with it too)."""
    key = (pair.case.name, request["name"])
    if key not in ANSWERS:
        ANSWERS[key] = reference.send(f"{pair.reference_url}/score", request)
    return ANSWERS[key]


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_invalid_requests_get_a_json_error_and_never_crash_the_script_silently(
    servers: dict[str, Pair], case: str
) -> None:
    """A request refused before the script's own run() is entered (a body the decorators
    cannot convert, a missing parameter, bad JSON for @input_schema, a method) is a 4xx
    JSON error. One the script answers itself (its own AMLResponse, or an error string it
    returns) is answered the same as under Microsoft's server. One that the script's own
    code fails on is a 500, as under Microsoft's server: shipml cannot tell a bad input from
    a bug inside run(); then the log must hold the script's traceback for that request."""
    pair = servers[case]
    assert pair.error is None, pair.error
    entry = reference.source(pair.case)["entry_script"]
    for request in reference.invalid_requests(pair.case):
        status, headers, body = reference.send(f"{pair.shipml_url}/score", request)
        ref_status, ref_headers, ref_body = reference.send(f"{pair.reference_url}/score", request)
        label = f"{case} invalid {request['name']}"
        if status == ref_status < 500 and (status == 200 or body == ref_body):
            # The script answers this request itself (an error string it returns with 200,
            # its own AMLResponse), as under Microsoft's server. A 200's text may differ:
            # one script lists a Python set, whose order changes from process to process.
            continue
        assert headers.get("content-type", "").startswith("application/json"), label
        error = json.loads(body)
        assert isinstance(error, dict) and isinstance(error.get("message"), str), label
        if status == ref_status:
            assert microsofts(headers) == microsofts(ref_headers), label
        if 400 <= status < 500:
            continue
        assert status == 500, f"{label}: shipml answered {status} {body!r}"
        assert ref_status == 500, (
            f"{label}: 500 from shipml, {ref_status} {ref_body!r} from Microsoft"
        )
        log = pair.shipml_log.read_text() if pair.shipml_log else ""
        marker = f"request {headers['x-request-id']}: the model raised"
        assert marker in log, f"{label}: no traceback for the request in the log"
        assert f'/{entry}"' in log[log.index(marker) : log.index(marker) + 20000], label
        print(f"{label}: 500, raised inside {entry}'s run() (Microsoft: 500 too)")


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_swagger_describes_run_as_microsofts_does(servers: dict[str, Pair], case: str) -> None:
    """/swagger.json in each version: the same status and, when there is one, the same
    ServiceInput/ServiceOutput (inference_schema's schemas of run())."""
    pair = servers[case]
    assert pair.error is None, pair.error
    for version in ("", "?version=3", "?version=3.1"):
        request = {"method": "GET", "path_query": version}
        ref_status, _, ref_body = reference.send(f"{pair.reference_url}/swagger.json", request)
        status, _, body = reference.send(f"{pair.shipml_url}/swagger.json", request)
        label = f"{case} /swagger.json{version}"
        assert status == ref_status, f"{label}: {status} {body!r}, Microsoft {ref_status}"
        if status != 200:
            assert json.loads(body)["message"] == json.loads(ref_body)["message"], label
            continue
        mine, theirs = json.loads(body), json.loads(ref_body)
        if any((pair.case / name).is_file() for name in USER_SWAGGER[version]):
            assert mine == theirs, f"{label}: the user's own document, answered as it is"
            continue
        assert mine.get("swagger") == theirs.get("swagger"), label
        assert mine.get("openapi") == theirs.get("openapi"), label
        for name in ("ServiceInput", "ServiceOutput"):
            key = ("definitions",) if version == "" else ("components", "schemas")
            a, b = theirs, mine
            for part in key:
                a, b = a[part], b[part]
            assert close(a[name], b[name]) is None, f"{label} {name}: {a[name]} != {b[name]}"


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_head_answers_as_under_microsofts_server(servers: dict[str, Pair], case: str) -> None:
    """HEAD (uptime monitors, ``curl -I``): Flask answers it on every GET route, /score
    included, where run() or the input parser sees the method HEAD. The same status and
    content type, and no body."""
    pair = servers[case]
    assert pair.error is None, pair.error
    for path in ("/", "/score", "/swagger.json"):
        ref_status, ref_headers, _ = reference.send(f"{pair.reference_url}{path}", HEAD)
        status, headers, body = reference.send(f"{pair.shipml_url}{path}", HEAD)
        label = f"{case} HEAD {path}"
        assert status == ref_status, f"{label}: {status}, Microsoft {ref_status}"
        assert headers.get("content-type") == ref_headers.get("content-type"), label
        assert body == b"", label


HEAD = {"method": "HEAD"}
# The documents a user may put in the code folder, which Microsoft's server answers as
# they are (server/swagger.py), by the query that asks for them.
USER_SWAGGER = {
    "": ("swagger.json", "swagger2.json"),
    "?version=3": ("swagger3.json",),
    "?version=3.1": ("swagger3.1.json",),
}


def build_and_run(pair: Pair) -> tuple[str, str]:
    """Build the version `shipml train` registered into a serve image and start it;
    returns its URL and container name."""
    work = WORK[0]
    env = {
        **os.environ,
        "SHIPML_STORE": str(work / "store"),
        "SHIPML_CACHE": str(work / "cache"),
        "SHIPML_BUILD_CACHE": BUILD_CACHE,
    }
    name = model_name(pair.case)
    tag = f"shipml-test/azureml-{name}:1"
    project = work / pair.case.name / pair.case.name
    commands = (
        ["build", f"{name}@latest", "--tag", tag, "--base-image", BASE],
        ["run", tag, "--name", f"shipml-test-azureml-{name}"],
    )
    outputs = []
    for args in commands:
        result = subprocess.run(
            [SHIPML, *args], cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    found = re.search(r"ready at (http://\S+?)/ .*container (\S+?)\)", outputs[-1])
    assert found, outputs
    return found.group(1), found.group(2)


@pytest.fixture(scope="module")
def images(servers: dict[str, Pair]) -> Iterator[dict[str, tuple[str, str]]]:
    """The image cases built and started together; stopped at the end of the module."""
    chosen = [servers[c] for c in IMAGE_CASES if c in servers and servers[c].error is None]
    with ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
        futures = {pair.case.name: pool.submit(build_and_run, pair) for pair in chosen}
    started = {name: future.result() for name, future in futures.items() if not future.exception()}
    failed = {name: future.exception() for name, future in futures.items() if future.exception()}
    try:
        assert not failed, failed
        yield started
    finally:
        names = [container for _, container in started.values()]
        if names:
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                list(
                    pool.map(
                        lambda n: subprocess.run(
                            [SHIPML, "stop", n], capture_output=True, check=False
                        ),
                        names,
                    )
                )


@pytest.mark.docker
@pytest.mark.parametrize("case", [c for c in IMAGE_CASES if c in {p.name for p in CASES}])
def test_serve_image_answers_as_under_microsofts_server(
    servers: dict[str, Pair], images: dict[str, tuple[str, str]], case: str
) -> None:
    """The registered version in a serve image (its requirements plus what the script
    imports: inference-schema, werkzeug) answers every request as Microsoft's server."""
    pair = servers[case]
    url, _ = images[case]
    for request in reference.valid_requests(pair.case):
        ref_status, _, ref_body = reference_answer(pair, request)
        status, _, body = reference.send(f"{url}/score", request)
        label = f"{case} {request['name']} (image)"
        assert (status, ref_status) == (200, 200), f"{label}: {status} {body!r}"
        if body != ref_body:
            difference = close(parsed(ref_body), parsed(body))
            assert difference is None, f"{label}: {difference}"
