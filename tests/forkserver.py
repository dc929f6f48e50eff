"""A fork server for the suite: Python programs started from an interpreter that has already
imported the scientific stack.

Every ``shipml train`` or ``shipml serve`` the suite starts spends ~3 s importing NumPy, SciPy,
pandas and scikit-learn before it does anything; the suite starts a few hundred of them, and
the Azure ML differential module starts Microsoft's server 30-odd times on top. A fork server
imports those libraries once, then forks one child per program. The child is the real program,
run as ``python SCRIPT ARGS`` or ``python -c CODE ARGS`` would run it (same ``sys.argv``,
``sys.path[0]``, environment, working directory, umask, descriptor limit, standard streams,
exit status), only without paying for the imports again.

A test starts the *client* (``command()``): a small process (``python -S``: stdlib only, no
site) that hands its argv, environment and standard descriptors to the server over a Unix
socket, forwards the signals it receives to the child, and exits with the child's status (or
dies of the child's signal). Killing the client (SIGKILL, a test's timeout) kills the child's
process group. When the server is not running, or cannot reproduce the interpreter (other
``PYTHON*`` variables, another user), the client simply ``exec``s the real interpreter, so a
command line made with ``command()`` always runs the program.

What is preloaded is third-party code only, and only libraries that read no setting of ours
at import: shipml's own modules, typer, rich, fsspec and prometheus_client (which shipml must
set up before it is imported) are imported by each child as they would be. Tests about the
import itself (start time, the OpenMP pools, ``make demo``, the images) run real processes.

A server started with ``executable`` (a ``wrapper`` for ``python`` itself) gives its children
that ``sys.executable``, so the Python programs they start the way shipml does (``shipml
train`` runs ``sys.executable train.py``; ``shipml build`` runs ``sys.executable -m pip``)
fork from it too. Anything a child of the server could not be runs for real: interpreter
options other than ``-c`` and ``-m``, or descriptors handed over beyond the standard three
(``pass_fds``, as joblib's loky workers get theirs).

Stdlib only: it runs under the project's venv and Microsoft's server's venv alike.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
# Forwarded by the client to the child (SIGKILL and SIGSTOP cannot be caught: a killed
# client makes the server kill the child's process group).
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
)
# Interpreter settings read once at start: a request whose value differs runs for real.
_INTERPRETER = "PYTHON"
_FREE = frozenset({"PYTHONDONTWRITEBYTECODE"})  # the child sets sys.dont_write_bytecode
FOLDER_PREFIX = "shipml-forkserver-"
_LIMITS = (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC, resource.RLIMIT_CORE)


# -- the client ------------------------------------------------------------------------------


def command(socket_path: str | os.PathLike[str], python: str, *argv: str) -> list[str]:
    """The command line that runs ``python *argv`` through the fork server at
    ``socket_path`` (or for real if it is not there)."""
    return [sys.executable, "-S", str(HERE), str(socket_path), python, *argv]


def child_pid(pid: int, socket_path: str | os.PathLike[str]) -> int:
    """The program's own process id for a client ``pid`` of the server at ``socket_path``
    (``pid`` itself for a process that runs for real, or with no server)."""
    if not socket_path:
        return pid
    try:
        return int((Path(socket_path).parent / f"{pid}.child").read_text())
    except (OSError, ValueError):
        return pid


def _client(socket_path: str, python: str, argv: list[str]) -> None:
    """Run ``python *argv`` in a child of the server; exit as it exits. Never returns.
    With no ``socket_path`` (no server), or descriptors beyond the standard three handed
    over (``pass_fds``: a child of the server would not have them), ``exec`` the
    interpreter itself."""
    if not socket_path or _handed_descriptors():
        os.execv(python, [python, *argv])
    request = {
        "python": python,
        "argv": argv,
        "env": dict(os.environ),
        "cwd": str(Path.cwd()),
        "umask": _umask(),
        "limits": {str(which): resource.getrlimit(which) for which in _LIMITS},
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": sorted(os.getgroups()),
        "privileges": _privileges(),
    }
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(socket_path)
        _send(connection, request, [_open_or_null(fd) for fd in (0, 1, 2)])
        answers = connection.makefile("rb")  # buffered: the end may follow the pid at once
        answer = _read(answers)
    except (OSError, ValueError):
        answer = {"real": True}
    if answer.get("real"):
        connection.close()
        os.execv(python, [python, *argv])
    pid = int(answer["pid"])
    marker = Path(socket_path).parent / f"{os.getpid()}.child"
    marker.write_text(str(pid))

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    try:
        ended = _read(answers)
    except (OSError, ValueError):
        ended = {"status": 1}
    finally:
        marker.unlink(missing_ok=True)
    if "signal" in ended:
        signum = int(ended["signal"])
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1)
        os._exit(128 + signum)
    os._exit(int(ended["status"]))


def _handed_descriptors() -> bool:
    """Whether this process holds a descriptor other than 0, 1 and 2 (the one listing
    ``/proc/self/fd`` is closed by the time it is checked)."""
    try:
        listed = [int(entry.name) for entry in Path("/proc/self/fd").iterdir()]
    except OSError:
        return False
    for fd in listed:
        if fd > 2:
            try:
                os.fstat(fd)
            except OSError:
                continue
            return True
    return False


def _privileges() -> list[str]:
    """What a child cannot take over from the client: its capability sets and
    no-new-privileges bit (setpriv, capsh), its cgroup and its CPU affinity (taskset)."""
    try:
        status = Path("/proc/self/status").read_text().splitlines()
        cgroup = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    kept = [line for line in status if line.startswith(("Cap", "NoNewPrivs", "Seccomp"))]
    return [*kept, *cgroup, f"affinity {sorted(os.sched_getaffinity(0))}"]


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _open_or_null(fd: int) -> int:
    try:
        os.fstat(fd)
        return fd
    except OSError:
        return os.open(os.devnull, os.O_RDWR)


def _send(connection: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    data = struct.pack("!I", len(payload)) + payload
    if fds:
        sent = socket.send_fds(connection, [data], fds)
        data = data[sent:]
    if data:
        connection.sendall(data)


def _read(stream: Any) -> Any:
    """The next message of a buffered stream (the client's side: several may arrive at once)."""
    header = stream.read(4)
    if len(header) < 4:
        raise ValueError("the other side closed the connection")
    payload = stream.read(struct.unpack("!I", header)[0])
    return json.loads(payload)


def _receive(connection: socket.socket) -> tuple[Any, list[int]]:
    """The request and its descriptors (the server's side: a client sends one message)."""
    data, fds, _flags, _address = socket.recv_fds(connection, 1 << 16, 3)
    if not data:
        raise ValueError("the other side closed the connection")
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        more = connection.recv(1 << 16)
        if not more:
            raise ValueError("the other side closed the connection mid-message")
        data += more
    return json.loads(data[4 : 4 + struct.unpack("!I", data[:4])[0]]), fds


# -- the server ------------------------------------------------------------------------------


class ForkServer:
    """A running fork server: ``python forkserver.py --serve SOCKET MODULES…`` in the
    background, its socket in a fresh folder. Clients that connect while it still imports
    wait in the listen queue. ``stop()`` ends it and every program it still runs."""

    def __init__(
        self,
        python: str,
        preload: list[str],
        env: dict[str, str] | None = None,
        executable: str | None = None,
    ) -> None:
        """``executable``: the children's ``sys.executable`` (a ``wrapper`` with no script):
        the Python programs a program starts with ``sys.executable`` (``shipml train``
        running train.py, ``shipml build`` running pip) then fork from this server too."""
        import subprocess
        import tempfile

        self.python = python
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.socket = str(self.folder / "server.sock")
        options = ["--executable", executable] if executable else []
        self.process = subprocess.Popen(
            [python, str(HERE), "--serve", self.socket, *options, *preload],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not Path(self.socket).exists():  # bound before the imports: a moment
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fork server did not start ({python})")
            time.sleep(0.01)

    def command(self, *argv: str) -> list[str]:
        """The command line running ``python *argv`` in a child of this server."""
        return command(self.socket, self.python, *argv)

    def stop(self) -> None:
        import shutil

        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


class _Running:
    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.pid = 0


def serve(socket_path: str, preload: list[str], executable: str | None = None) -> None:
    """Listen at ``socket_path`` at once (clients queue), import ``preload``, then fork one
    child per request until SIGTERM or until the process that started it is gone; then kill
    every child still running."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(256)
    for name in preload:
        importlib.import_module(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    running: dict[socket.socket, _Running] = {}
    by_pid: dict[int, _Running] = {}
    parent = os.getppid()
    while not stopping:
        try:
            ready, _, _ = select.select([listener, wake_read, *running], [], [], 2.0)
        except InterruptedError:
            continue
        if os.getppid() != parent:  # the test run died without stopping it: end with it
            break
        if wake_read in ready:
            _drain(wake_read)
            _reap(by_pid, running)
        if listener in ready:
            connection, _ = listener.accept()
            entry = _start(connection, listener, [wake_read, wake_write], running, executable)
            if entry is not None:
                running[connection] = entry
                by_pid[entry.pid] = entry
        for connection in [c for c in ready if c in running]:
            entry = running[connection]
            try:
                gone = not connection.recv(1)
            except OSError:
                gone = True
            if gone:  # the client died (SIGKILL, a timeout): its program goes too
                _kill_group(entry.pid, signal.SIGKILL)
                del running[connection]
                connection.close()
    _shut_down(listener, socket_path, [entry.pid for entry in by_pid.values()])


def _drain(fd: int) -> None:
    """Empty the signal wake-up pipe (the signals were handled already)."""
    while True:
        try:
            if not os.read(fd, 512):
                return
        except BlockingIOError:
            return


def _shut_down(listener: socket.socket, socket_path: str, children: list[int]) -> None:
    for pid in children:
        _kill_group(pid, signal.SIGKILL)
    listener.close()
    Path(socket_path).unlink(missing_ok=True)
    folder = Path(socket_path).parent
    if folder.name.startswith(FOLDER_PREFIX):  # made by ForkServer: nothing else lives there
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _kill_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _reap(by_pid: dict[int, _Running], running: dict[socket.socket, _Running]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        entry = by_pid.pop(pid, None)
        if entry is None:
            continue
        if os.WIFSIGNALED(status):
            ended = {"signal": os.WTERMSIG(status)}
        else:
            ended = {"status": os.waitstatus_to_exitcode(status)}
        if running.pop(entry.connection, None) is not None:
            with contextlib.suppress(OSError):
                _send(entry.connection, ended)
            entry.connection.close()


def _start(
    connection: socket.socket,
    listener: socket.socket,
    own: list[int],
    running: dict[socket.socket, _Running],
    executable: str | None,
) -> _Running | None:
    try:
        request, fds = _receive(connection)
    except (OSError, ValueError):
        connection.close()
        return None
    if not _can_reproduce(request) or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        try:
            _send(connection, {"real": True})
        finally:
            connection.close()
        return None
    entry = _Running(connection)
    pid = os.fork()
    if pid == 0:
        try:
            listener.close()
            for other in running:
                other.close()
            for fd in own:
                os.close(fd)
            connection.close()
            _become(request, fds, executable)
        except BaseException:  # setting the child up failed (_become exits itself)
            import traceback

            traceback.print_exc()
        finally:
            os._exit(70)
    for fd in fds:
        os.close(fd)
    entry.pid = pid
    try:
        _send(connection, {"pid": pid})
    except OSError:
        _kill_group(pid, signal.SIGKILL)
    return entry


def _can_reproduce(request: dict[str, Any]) -> bool:
    """Whether a child of this server is the interpreter the request asks for."""
    argv = request["argv"]  # a script, -c CODE or -m MODULE: no interpreter option
    if not argv or (argv[0].startswith("-") and (argv[0] not in ("-c", "-m") or len(argv) < 2)):
        return False
    # The same venv (a venv's python is a link to the system's: compare the folders)
    if Path(request["python"]).absolute().parent != Path(sys.executable).absolute().parent:
        return False
    if (request["uid"], request["gid"]) != (os.getuid(), os.getgid()):
        return False
    if request["groups"] != sorted(os.getgroups()) or request["privileges"] != _privileges():
        return False
    theirs = {k: v for k, v in request["env"].items() if k.startswith(_INTERPRETER)}
    ours = {k: v for k, v in os.environ.items() if k.startswith(_INTERPRETER)}
    return {k: v for k, v in theirs.items() if k not in _FREE} == {
        k: v for k, v in ours.items() if k not in _FREE
    }


def _become(request: dict[str, Any], fds: list[int], executable: str | None) -> None:
    """In the child: take the client's process state, then run its program as Python would."""
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    for which, (soft, hard) in request["limits"].items():
        resource.setrlimit(int(which), (soft, hard))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    if executable:
        sys.executable = executable
    encoding = sys.__stdout__.encoding if sys.__stdout__ else "utf-8"
    sys.stdin = sys.__stdin__ = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(  # noqa: SIM115 - the process's own, as Python's
        1, "w", buffering=1 if os.isatty(1) else -1, encoding=encoding, closefd=False
    )
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False
    )
    os._exit(_run(request["argv"]))


def _run(argv: list[str]) -> int:
    """Run ``python *argv`` (a script, ``-c CODE`` or ``-m MODULE``) in this process; its
    exit status."""
    import atexit
    import runpy
    import threading
    import traceback
    import types

    status = 0
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            main = types.ModuleType("__main__")
            main.__dict__["__builtins__"] = __builtins__
            sys.modules["__main__"] = main
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        elif argv[0] == "-m":
            sys.argv = list(argv[1:])  # runpy puts the module's path first, as -m does
            sys.path[0] = str(Path.cwd())
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[0] = str(Path(argv[0]).resolve().parent)
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        status = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        status = 1
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if status < 0:  # died of a signal, as Python does after KeyboardInterrupt
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def wrapper(path: Path, python: str, script: str | None, variable: str) -> Path:
    """Write an executable at ``path`` that runs ``python script ARGS`` through the fork
    server named by the environment variable ``variable`` (for real when it is unset): a
    drop-in for a console script such as ``shipml``; with no ``script``, for ``python``."""
    first = [script] if script else []
    text = (
        f"#!{sys.executable} -S\n"
        "import os, sys\n"
        f"sys.path.insert(0, {str(HERE.parent)!r})\n"
        "import forkserver\n"
        f"forkserver.run(os.environ.get({variable!r}, ''), {python!r}, [*{first!r}, *sys.argv[1:]])\n"
    )
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text)
        temporary.chmod(0o755)
        temporary.replace(path)
    return path


def run(socket_path: str, python: str, argv: list[str]) -> None:
    """The client's entry point (see ``command`` and ``wrapper``). Never returns."""
    _client(socket_path, python, argv)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        options = sys.argv[3:]
        executable = None
        if options[:1] == ["--executable"]:
            executable, options = options[1], options[2:]
        serve(sys.argv[2], options, executable)
        return
    run(sys.argv[1], sys.argv[2], sys.argv[3:])


if __name__ == "__main__":
    main()
