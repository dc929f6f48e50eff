"""The suite's fork server (tests/forkserver.py): a program run through it must behave as the
same program run by the interpreter itself, or the suite tests something else than users run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import forkserver

SHOW = (
    "import os, resource, sys\n"
    "print(sys.argv, os.getcwd(), sys.path[0] == '', os.environ.get('PROBE'),\n"
    "      oct(os.umask(0)), resource.getrlimit(resource.RLIMIT_NOFILE)[0],\n"
    "      sys.stdin.read(), __name__, flush=True)\n"
    "print('to stderr', file=sys.stderr)\n"
    "sys.exit(int(sys.argv[1]))\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[forkserver.ForkServer]:
    running = forkserver.ForkServer(sys.executable, ["json"])
    yield running
    running.stop()


def run(command: list[str], tmp_path: Path, nofile: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        import resource

        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return subprocess.run(
        command,
        input="from stdin",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PROBE": "seen"},
        preexec_fn=limit,
        timeout=60,
        check=False,
    )


def test_a_forked_program_is_the_program_run_for_real(
    server: forkserver.ForkServer, tmp_path: Path
) -> None:
    real = run([sys.executable, "-c", SHOW, "3", "x"], tmp_path, 500)
    forked = run(server.command("-c", SHOW, "3", "x"), tmp_path, 500)
    assert real.returncode == forked.returncode == 3
    assert real.stdout == forked.stdout and "seen" in real.stdout and "0o27" in real.stdout
    assert real.stderr == forked.stderr == "to stderr\n"
    script = tmp_path / "script.py"
    script.write_text(SHOW)
    real = run([sys.executable, str(script), "0"], tmp_path, 400)
    forked = run(server.command(str(script), "0"), tmp_path, 400)
    assert real.returncode == forked.returncode == 0 and real.stdout == forked.stdout


def test_signals_reach_the_program_and_a_killed_client_kills_it(
    server: forkserver.ForkServer,
) -> None:
    sleeper = server.command("-c", "import time; print('up', flush=True); time.sleep(60)")
    with subprocess.Popen(sleeper, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stdout.readline() == "up\n"
        process.terminate()
        assert process.wait(timeout=10) == -signal.SIGTERM  # died of it, as the real one would
    with subprocess.Popen(sleeper, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stdout.readline() == "up\n"
        child = forkserver.child_pid(process.pid, server.socket)
        assert child != process.pid
        process.kill()
        process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists()


def test_what_a_child_cannot_take_over_runs_for_real(server: forkserver.ForkServer) -> None:
    """Another interpreter setting, fewer CPUs: the client runs the interpreter itself."""
    code = "import os, sys; print(os.getppid(), len(os.sched_getaffinity(0)))"
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    done = subprocess.run(
        server.command("-c", code), capture_output=True, text=True, env=env, check=True
    )
    assert int(done.stdout.split()[0]) != server.process.pid
    forked = subprocess.run(server.command("-c", code), capture_output=True, text=True, check=True)
    assert int(forked.stdout.split()[0]) == server.process.pid
    if len(os.sched_getaffinity(0)) > 1:
        pinned = subprocess.run(
            server.command("-c", code),
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
        assert pinned.stdout.split() == [str(os.getpid()), "1"] or pinned.stdout.split()[1] == "1"
        assert int(pinned.stdout.split()[0]) != server.process.pid


def test_a_program_that_ends_at_once_still_gives_its_status(
    server: forkserver.ForkServer,
) -> None:
    """Its end can reach the client together with its process id: neither may be lost."""
    statuses = {
        subprocess.run(server.command("-c", "raise SystemExit(5)"), check=False).returncode
        for _ in range(10)
    }
    assert statuses == {5}


PROBE = (
    "import os, sys\n"
    "print(sys.argv, sys.path[0] == os.getcwd(), __name__, sys.executable == os.environ['EXE'])\n"
)
STARTS = (
    "import os, subprocess, sys\n"
    "def ppid(*argv, **options):\n"
    "    code = 'import os; print(os.getppid())'\n"
    "    done = subprocess.run([sys.executable, *argv, '-c', code], capture_output=True,\n"
    "                          text=True, check=True, **options)\n"
    "    return int(done.stdout)\n"
    "reader, writer = os.pipe()\n"
    "print(ppid(), ppid('-u'), ppid(pass_fds=(writer,)))\n"
)


def test_programs_started_with_sys_executable_fork_from_the_server_too(tmp_path: Path) -> None:
    """``shipml train`` runs ``sys.executable train.py``, ``shipml build`` runs
    ``sys.executable -m pip``: with ``executable`` those fork from the server as well, and
    behave as the interpreter itself would run them."""
    python = forkserver.wrapper(tmp_path / "python", sys.executable, None, "PROBE_SOCKET")
    running = forkserver.ForkServer(sys.executable, ["json"], executable=str(python))
    try:
        (tmp_path / "probe.py").write_text(PROBE)
        env = {**os.environ, "PROBE_SOCKET": running.socket, "EXE": str(python)}
        outputs = []
        for command in (running.command("-m", "probe", "a"), [sys.executable, "-m", "probe", "a"]):
            done = subprocess.run(
                command, capture_output=True, text=True, cwd=tmp_path, env=env, check=True
            )
            outputs.append(done.stdout)
        assert outputs[0] == f"[{str(tmp_path / 'probe.py')!r}, 'a'] True __main__ True\n"
        assert outputs[1] == outputs[0].replace("True\n", "False\n")  # the real sys.executable
        done = subprocess.run(
            running.command("-c", STARTS), capture_output=True, text=True, env=env, check=True
        )
        plain, with_option, with_descriptor = (int(pid) for pid in done.stdout.split())
        assert plain == running.process.pid
        # an interpreter option, or a descriptor handed over: the interpreter itself
        assert running.process.pid not in (with_option, with_descriptor)
    finally:
        running.stop()
