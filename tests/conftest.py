"""Fixtures shared by the whole suite: an isolated store per test and real server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# One native thread per test process and per process it starts (set before NumPy loads:
# OpenMP and BLAS read these once, when they load). The suite runs one xdist worker per core
# and each worker's trainings, servers and containers are busy at once: OpenMP threads that
# spin while their partner waits for a core cost CPU the other worker needs. `shipml serve`
# sets its own per worker (serving/sizing.py), so the services under test size as they would
# anywhere. A variable set outside the suite wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests import forkserver, trained  # noqa: E402
from tests.ports import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The installed console script, run for real: tests about the process itself (its imports,
# its thread pools) use it.
REAL_SHIPML = str(Path(sys.executable).with_name("shipml"))
# What every other test runs: the same script through the suite's fork server
# (tests/forkserver.py), which has NumPy, SciPy, pandas and scikit-learn imported already and
# saves each `shipml` ~3 s of imports. SHIPML_TEST_FORKSERVER=off runs every one for real.
FORKSERVER_VARIABLE = "SHIPML_TEST_FORKSERVER"
SHIPML = str(
    forkserver.wrapper(
        REPO / ".cache" / "forkserver" / "shipml", sys.executable, REAL_SHIPML, FORKSERVER_VARIABLE
    )
)
# The children's sys.executable: what they start with it (train.py under `shipml train`,
# pip under `shipml build`) forks from the same server instead of importing everything again.
FORKED_PYTHON = str(
    forkserver.wrapper(
        REPO / ".cache" / "forkserver" / "python", sys.executable, None, FORKSERVER_VARIABLE
    )
)
# Third-party libraries only, none reading a setting or the working directory at import
# (gunicorn does: its default chdir is the importing process's; see tests/forkserver.py).
PRELOAD = [
    "numpy",
    "scipy.stats",
    "pandas",
    "pyarrow",
    "joblib",
    *(
        f"sklearn.{name}"
        for name in (
            "base",
            "compose",
            "ensemble",
            "feature_extraction.text",
            "impute",
            "linear_model",
            "metrics",
            "model_selection",
            "pipeline",
            "preprocessing",
            "tree",
        )
    ),
    "adlfs",
    "azure.storage.blob",
    "httpx",
    "uvicorn",
    "orjson",
    "yaml",
]
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# One wheel cache for every image the suite builds (shipml's own, keyed by the locked
# requirements), kept between runs: a second run downloads nothing; gitignored.
BUILD_CACHE = str(Path(os.environ.get("SHIPML_TEST_BUILD_CACHE") or REPO / ".cache" / "build"))
SEED_IRIS_RECORD = {
    "sepal_length": 6.7,
    "sepal_width": 3.0,
    "petal_length": 5.2,
    "petal_width": 2.3,
}


# Modules whose tests run first under pytest-xdist: the longest groups, so that they do not start
# last and leave one worker alone at the end (longest-first is the best plain schedule).
LONGEST_FIRST = ("engine", "tests/integration/test_azureml_dropin.py")


_FORKSERVERS: list[forkserver.ForkServer] = []


def _start_forkserver(session: pytest.Session) -> None:
    """Start this process's fork server once it is known to be needed: by a test outside
    tests/unit (each xdist worker its own; the controller collects nothing). ``make unit``
    starts none: importing the scientific stack would only slow its start."""
    if os.environ.get(FORKSERVER_VARIABLE) == "off" or _FORKSERVERS:
        return
    unit = REPO / "tests" / "unit"
    if all(unit in item.path.parents for item in session.items):
        return
    server = forkserver.ForkServer(sys.executable, PRELOAD, executable=FORKED_PYTHON)
    _FORKSERVERS.append(server)
    os.environ[FORKSERVER_VARIABLE] = server.socket


def pytest_unconfigure(config: pytest.Config) -> None:
    while _FORKSERVERS:
        _FORKSERVERS.pop().stop()


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for ``pytest -n N --dist loadgroup`` (make test, make unit).

    Every test that needs the Docker engine joins one group, "engine": those modules share a
    session's images, container names and the build cache, and two builds at once on a small
    machine only slow each other. A test that uses a module- or session-scoped fixture of ours
    (a trained store, servers, a browser) stays with its module on one worker, so that the
    fixture is made once, not once per worker. Any other test goes to whichever worker is
    free. Without xdist the marks and the order change nothing.
    """
    for item in items:
        marks = getattr(item.module, "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        if any(mark.name == "docker" for mark in marks):
            item.add_marker(pytest.mark.xdist_group("engine"))
        elif _shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    if not hasattr(config, "workerinput"):  # one process: the files' own order
        return
    rank = {group: i for i, group in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        group = next((m.args[0] for m in item.iter_markers("xdist_group")), "")
        return rank.get(group, len(rank))

    items.sort(key=order)  # stable: the order inside a group is kept


@pytest.hookimpl(trylast=True)  # after xdist's
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail loudly if ``--dist loadgroup`` would not keep a group on one worker: two Docker
    tests at once on one engine collide, and xdist only says so by splitting them. Then
    start the fork server, if the tests need one."""
    if getattr(session.config.option, "loadgroup", False):  # set in xdist's workers only
        for item in session.items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                raise pytest.UsageError(
                    f"pytest-xdist did not group {item.nodeid}: this pytest and pytest-xdist "
                    "do not work together for --dist loadgroup (see the pytest pin in "
                    "pyproject.toml)"
                )
    if not session.config.option.collectonly:
        _start_forkserver(session)


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture of the suite's own that outlives one test."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True
    return any(
        definition.scope != "function" and definition.baseid  # "" : a plugin's fixture
        for name in info.names_closure
        for definition in info.name2fixturedefs.get(name, ())
    )


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store and cache; nothing touches ~/.shipml."""
    store = tmp_path / "store"
    monkeypatch.setenv("SHIPML_STORE", str(store))
    monkeypatch.setenv("SHIPML_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SHIPML_BUILD_CACHE", BUILD_CACHE)
    for name in ("SHIPML_API_KEYS", "SHIPML_API_KEYS_FILE", "SHIPML_OUTPUT", "SHIPML_PORT"):
        monkeypatch.delenv(name, raising=False)
    return store


@pytest.fixture
def trained_example(
    tmp_path_factory: pytest.TempPathFactory, isolated_store: Path
) -> Callable[..., str]:
    """``trained_example("sentiment")``: the example, trained by ``shipml train`` once per
    test run, copied into this test's store (or ``store=``); returns ``sentiment@latest``
    (tests/trained.py)."""
    shared = trained.shared_folder(tmp_path_factory)

    def copy(example: str, store: Path | None = None) -> str:
        return trained.copy_into(store or isolated_store, example, shared, SHIPML)

    return copy


def run_shipml(
    *args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SHIPML, *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"shipml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_until_ready(
    url: str, timeout: float = 60, alive: Callable[[], bool] = lambda: True, log: Path | None = None
) -> None:
    """Poll ``url/health/ready`` until it answers 200; fail with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError(f"the server exited early:\n{log.read_text() if log else ''}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready in {timeout:.0f}s:\n{log.read_text() if log else ''}")


def train_in_parallel(project: Path, count: int) -> list[str]:
    """Run ``count`` ``shipml train`` processes at once; returns the references registered."""
    runs = [
        subprocess.Popen(
            [SHIPML, "train"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(count)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    return sorted(
        line.split()[1]
        for out in outputs
        for line in out.splitlines()
        if line.startswith("Registered")
    )


class Server:
    """A real ``shipml serve`` process on a free port."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def master(self) -> int:
        """The master's process id (not the fork server's client, see tests/forkserver.py)."""
        return forkserver.child_pid(self.process.pid, os.environ.get(FORKSERVER_VARIABLE, ""))

    def workers(self) -> list[int]:
        """The worker processes' ids (the master's children)."""
        pid = self.master
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def metric(self, name: str) -> float:
        """A sample's value from ``/metrics`` (0 when absent), e.g.
        ``shipml_http_refused_total{reason="evicted"}``."""
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until_ready(self.url, timeout, lambda: self.process.poll() is None, self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def stop_all(servers: Iterable[Server]) -> None:
    """Stop every server: all are told at once, then each is waited for (one after another,
    their graceful shutdowns would add up)."""
    servers = list(servers)
    for server in servers:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
    for server in servers:
        server.stop()


def launch(
    args: tuple[str, ...],
    folder: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    nofile: int | None = None,
) -> Server:
    """Start ``shipml serve ARGS`` on a free port, its log in ``folder``; ``nofile`` lowers
    its descriptor limit (soft and hard) as ``ulimit -n`` would."""
    port = free_port()
    log = folder / f"serve-{port}.log"

    def limit() -> None:
        if nofile is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [SHIPML, "serve", *args, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd or folder,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=limit if nofile is not None else None,  # noqa: PLW1509 - no threads here
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``shipml serve`` with the given arguments; stopped at the end of the test."""
    servers: list[Server] = []

    def start(
        *args: str,
        wait: bool = True,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        nofile: int | None = None,
    ) -> Server:
        server = launch(args, tmp_path, env, cwd, nofile)
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    stop_all(servers)


@pytest.fixture
def iris_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target_names[data.target]


@pytest.fixture
def iris_model(iris_data: tuple[np.ndarray, np.ndarray]) -> str:
    """A small iris classifier published as ``iris:1``; returns its reference."""
    from sklearn.linear_model import LogisticRegression

    import shipml

    x, y = iris_data
    model = LogisticRegression(max_iter=500).fit(x, y)
    return shipml.save_model(
        model,
        training_data=x,
        feature_names=IRIS_FEATURES,
        name="iris",
        metrics={"accuracy": float(model.score(x, y))},
    )
