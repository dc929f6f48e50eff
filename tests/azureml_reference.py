"""Microsoft's reference server for the Azure ML scoring-script corpus.

tests/fixtures/azureml_scripts/ holds real Azure ML entry scripts, each with a build_model.py that
rebuilds the model files it loads and a requests.json of requests to send it (see its README.md).
The differential tests run each case under Microsoft's own `azureml-inference-server-http`
(installed in .venv-azmlinfsrv by scripts/azmlinfsrv.sh) and under shipml, with the same model
files and the same request bytes, and compare the answers. This module is the reference side:
it builds the model files, starts Microsoft's server the way Azure ML runs it, and sends requests.

How a case is laid out for the server (the shipml side must lay it out the same way):

- The app root is a fresh copy of the case folder (the entry script and the modules beside it),
  as Azure ML mounts the code folder. It is the working directory, it is on sys.path (the server
  appends AML_APP_ROOT), and the entry script is passed by its file name, exactly as
  `azmlinfsrv --entry_script score.py` does when started in the code folder.
- AZUREML_MODEL_DIR is the folder build_model.py wrote, with the registered relative paths.
- SOURCE.json "layout" changes that for a few scripts:
  "app_root": the model files are also copied into the app root, for scripts that open them
  relative to the working directory or to their own file;
  "azureml_models": azureml-core v1's layout: the app root holds azureml-models/NAME/VERSION/...
  (build_model.py writes it under its output folder) and AZUREML_MODEL_DIR is
  SOURCE.json "azureml_model_dir", relative to the working directory, as v1 deployments set it.

Development check (not a pytest test): `python -m tests.azureml_reference check [CASE ...]`
builds every case, starts the reference servers in parallel and asserts that every valid request
answers 200.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests import forkserver
from tests.ports import free_port

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "azureml_scripts"
REFERENCE_VENV = Path(os.environ.get("AZMLINFSRV_VENV", REPO / ".venv-azmlinfsrv"))
# The files of a case folder that are the corpus' own, not the published code.
CORPUS_FILES = frozenset({"SOURCE.json", "build_model.py", "requests.json"})

# Microsoft's CLI binds 0.0.0.0 and has no host option: set its default host to loopback, then
# run its own entry point (azureml_inference_server_http.amlserver:run, the `azmlinfsrv` script).
_LAUNCH = (
    "import sys\n"
    "import azureml_inference_server_http.amlserver as server\n"
    "server.DEFAULT_HOST = '127.0.0.1'\n"
    "sys.argv[0] = 'azmlinfsrv'\n"
    "server.run()\n"
)
# Variables a developer's shell might carry that would change how the server loads the script.
_SERVER_VARIABLES = (
    "AML_APP_ROOT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_MODEL_DIR",
    "AZUREML_CONFIG_FILE",
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AML_CORS_ORIGINS",
    "SEPERATE_HEALTH_ENDPOINT",
    "WORKER_COUNT",
    "SERVICE_NAME",
)


def cases() -> list[Path]:
    """Every case folder of the corpus, in name order."""
    return sorted(p.parent for p in CORPUS.glob("*/SOURCE.json"))


def source(case: Path) -> dict[str, Any]:
    """The case's SOURCE.json: where the script comes from and how it is laid out."""
    data: dict[str, Any] = json.loads((case / "SOURCE.json").read_text(encoding="utf-8"))
    return data


def valid_requests(case: Path) -> list[dict[str, Any]]:
    """Requests every server must answer as the reference does: with 200, or with the
    request's "status" when the script answers it itself (its own AMLResponse)."""
    requests: list[dict[str, Any]] = _requests_file(case)["requests"]
    return requests


def invalid_requests(case: Path) -> list[dict[str, Any]]:
    """Requests a careful server refuses (wrong names, shapes or types, bodies that are not JSON)."""
    requests: list[dict[str, Any]] = _requests_file(case).get("invalid", [])
    return requests


def _requests_file(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((case / "requests.json").read_text(encoding="utf-8"))
    return data


def build_model(case: Path, out: Path, python: str = sys.executable) -> None:
    """Write the case's model files under `out` with the project's Python (deterministic)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, str(case / "build_model.py"), str(out)], check=True, cwd=case)


# Runs several build_model.py scripts in one interpreter, each as `python build_model.py OUT`
# would (its folder first on sys.path and the working directory, its argv), so that numpy,
# scipy, scikit-learn and pandas are imported once instead of once per case.
_BUILD_MANY = """
import os, runpy, sys, traceback
for case, out in zip(sys.argv[1::2], sys.argv[2::2]):
    os.makedirs(out, exist_ok=True)
    os.chdir(case)
    script = os.path.join(case, "build_model.py")
    sys.argv, saved = [script, out], list(sys.path)
    sys.path.insert(0, case)
    try:
        runpy.run_path(script, run_name="__main__")
    except BaseException:
        print("FAILED", case, flush=True)
        traceback.print_exc()
    finally:
        sys.path[:] = saved
"""


def build_models(builds: list[tuple[Path, Path]], python: str = sys.executable) -> dict[Path, str]:
    """``build_model`` for many cases at once, in one process (the same files as one by one).

    Returns the cases whose build failed, each with its traceback; the others are built.
    """
    arguments = [str(path.resolve()) for pair in builds for path in pair]
    done = subprocess.run(
        [python, "-c", _BUILD_MANY, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    failed: dict[Path, str] = {}
    for chunk in done.stdout.split("FAILED ")[1:]:
        name, _, trace = chunk.partition("\n")
        failed[Path(name)] = trace
    if done.returncode != 0 and not failed:
        raise RuntimeError(f"building the model files failed:\n{done.stdout[-3000:]}")
    return failed


def prepare_app_root(case: Path, model_dir: Path, app_root: Path) -> dict[str, str]:
    """Lay the case out in `app_root` as Azure ML does; return the variables that go with it.

    Returns AML_APP_ROOT, AZUREML_ENTRY_SCRIPT and AZUREML_MODEL_DIR as the reference server
    sees them (the entry script is a file name relative to the app root).
    """
    if app_root.exists():
        shutil.rmtree(app_root)
    shutil.copytree(
        case, app_root, ignore=lambda _d, names: [n for n in names if n in CORPUS_FILES]
    )
    meta = source(case)
    layout = meta.get("layout", "model_dir")
    model_dir_env = str(model_dir.resolve())
    if layout == "app_root":
        shutil.copytree(model_dir, app_root, dirs_exist_ok=True)
    elif layout == "azureml_models":
        (app_root / "azureml-models").symlink_to((model_dir / "azureml-models").resolve())
        model_dir_env = meta["azureml_model_dir"]
    elif layout != "model_dir":
        raise ValueError(f"{case.name}: unknown layout {layout!r} in SOURCE.json")
    return {
        "AML_APP_ROOT": str(app_root.resolve()),
        "AZUREML_ENTRY_SCRIPT": meta["entry_script"],
        "AZUREML_MODEL_DIR": model_dir_env,
    }


# Imported once by the reference's fork server (tests/forkserver.py), not once per case:
# third-party libraries only, none of Microsoft's server's own modules (they read its settings
# at import).
PRELOAD = [
    "numpy",
    "scipy.stats",
    "pandas",
    "joblib",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "flask",
]
_FORKSERVER: list[forkserver.ForkServer] = []


@contextlib.contextmanager
def forked() -> Iterator[None]:
    """Start Microsoft's servers (``start_reference``) from a fork server of the reference
    venv while inside: each saves the imports of NumPy, pandas, scikit-learn and Flask."""
    server = forkserver.ForkServer(str(REFERENCE_VENV / "bin" / "python"), PRELOAD, _environment())
    _FORKSERVER.append(server)
    try:
        yield
    finally:
        _FORKSERVER.remove(server)
        server.stop()


def _environment() -> dict[str, str]:
    """The environment Microsoft's server runs in, before a case's own variables."""
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_VARIABLES}
    # gunicorn otherwise opens a control socket under $HOME; no bytecode in the app root.
    env["GUNICORN_CMD_ARGS"] = "--no-control-socket"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def start_reference(case: Path, model_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start Microsoft's server for `case` on 127.0.0.1:`port`; its output goes to `log`.

    The app root is made fresh next to the log (LOG.approot/). Stop it with `stop`; wait for it
    with `wait_ready`.
    """
    python = REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} is missing: run scripts/azmlinfsrv.sh first")
    app_root = log.with_name(log.name + ".approot")
    layout = prepare_app_root(case, model_dir, app_root)
    env = {**_environment(), **layout}
    arguments = [
        "-c",
        _LAUNCH,
        "--entry_script",
        layout["AZUREML_ENTRY_SCRIPT"],
        "--port",
        str(port),
    ]
    command = _FORKSERVER[-1].command(*arguments) if _FORKSERVER else [str(python), *arguments]
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=app_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # gunicorn's master and worker stop together (see stop)
        )


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait until the server answers its liveness probe (after the script's init() ran).

    Raises RuntimeError if the server exits first (init() failed: see its log) or times out.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the reference server exited with {process.returncode}")
        try:
            status, _, _ = send(
                f"http://127.0.0.1:{port}/", {"method": "GET", "path_query": ""}, timeout=5
            )
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the reference server on port {port} was not ready in {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by `start_reference` (its whole process group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()


def send(
    url: str, request: dict[str, Any], timeout: float = 60.0
) -> tuple[int, dict[str, str], bytes]:
    """Send one request of requests.json to `url` (e.g. http://127.0.0.1:5001/score), exactly.

    The method, `path_query` (appended to the URL), headers and body bytes are sent as given:
    "body" is sent as json.dumps(body) in UTF-8, "body_text" as its UTF-8 bytes, "body_base64"
    (binary bodies: images, multipart forms) decoded; nothing else is added but Host and
    Content-Length. Returns the status, the headers (names in lower case)
    and the body.
    """
    parts = urllib.parse.urlsplit(url + request.get("path_query", ""))
    if "body" in request:
        body: bytes | None = json.dumps(request["body"]).encode("utf-8")
    elif "body_text" in request:
        body = request["body_text"].encode("utf-8")
    elif "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
    else:
        body = None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port, timeout=timeout
    )
    try:
        connection.putrequest(request["method"], target, skip_accept_encoding=True)
        for name, value in request.get("headers", {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        payload = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, payload
    finally:
        connection.close()


def check(names: list[str], batch: int = 6) -> int:
    """Build, start and query every case (or those named); print one line per request.

    Servers start `batch` at a time (the machine has 2 cores); every one started is stopped.
    """
    selected = [c for c in cases() if not names or c.name in names]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="azureml-reference-") as tmp, forked():
        work = Path(tmp)
        for first in range(0, len(selected), batch):
            failures += _check_batch(selected[first : first + batch], work)
    print(f"{len(selected)} cases, {failures} failures")
    return 1 if failures else 0


def _check_batch(batch: list[Path], work: Path) -> int:
    failures = 0
    servers: list[tuple[Path, int, subprocess.Popen[bytes], Path]] = []
    try:
        failed = build_models([(case, work / case.name / "model") for case in batch])
        for case, trace in failed.items():
            failures += 1
            print(f"FAIL {case.name}: build_model.py failed\n{trace}")
        for case in batch:
            if case.resolve() in failed:
                continue
            model_dir = work / case.name / "model"
            port = free_port()
            log = work / case.name / "server.log"
            servers.append((case, port, start_reference(case, model_dir, port, log), log))
        for case, port, process, log in servers:
            try:
                wait_ready(port, process)
            except RuntimeError as error:
                failures += 1
                print(f"FAIL {case.name}: {error}\n{log.read_text(errors='replace')[-3000:]}")
                continue
            url = f"http://127.0.0.1:{port}/score"
            for request in valid_requests(case):
                status, _, body = send(url, request)
                expected = request.get("status", 200)
                failures += status != expected
                shown = body[:160].decode("utf-8", errors="replace")
                verdict = "ok  " if status == expected else "FAIL"
                print(f"{verdict} {case.name} {request['name']}: {status} {shown}")
            for request in invalid_requests(case):
                status, _, body = send(url, request)
                shown = body[:120].decode("utf-8", errors="replace")
                print(f"     {case.name} invalid {request['name']}: {status} {shown}")
    finally:
        for _, _, process, _ in servers:
            stop(process)
    return failures


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "check":
        sys.exit("usage: python -m tests.azureml_reference check [CASE ...]")
    sys.exit(check(sys.argv[2:]))
