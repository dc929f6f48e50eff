"""``SCORING_TIMEOUT_MS``: a ``run()`` that takes longer is stopped, as Microsoft's server
stops it.

Microsoft's server arms ``SIGALRM`` around ``run()`` (it calls ``run()`` on the main
thread of a sync gunicorn worker); the alarm's handler raises, and the client gets a 500
``{"message": "Scoring timeout after N ms"}``. A shipml worker calls ``run()`` on its
model thread (or on its event loop, were it timed quick at warm-up), and a signal's
handler runs on the main thread only.
So one watchdog thread per process keeps the deadlines of the calls under way and, when
one passes, raises :class:`Expired` inside the thread running that call
(``PyThreadState_SetAsyncExc``). Like the alarm's exception, it lands at the next line of
Python the call runs; a call blocked inside one C function (a long ``time.sleep``, a read
from a socket with no timeout) sees it when that function returns. The service does not
wait that long for a call on the model thread: the batcher answers its client at the
deadline (serving/batching.py, ``call_timeout``).

:class:`Expired` derives from ``BaseException``, so a script's own ``except Exception``
cannot swallow it. A deadline is armed and disarmed under one lock, and an exception
raised for a call that has just returned is withdrawn before the ``with`` block ends
(:class:`Limit`), so it never lands in shipml's own code.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

from shipml.errors import LoadFailed, ShipmlError

VARIABLE = "SCORING_TIMEOUT_MS"
DEFAULT_MS = 3_600_000  # Microsoft's server's default: one hour
WORKER_VARIABLE = "WORKER_TIMEOUT"
WORKER_DEFAULT_S = 300  # Microsoft's server's default for gunicorn's --timeout

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
_set_async_exc.restype = ctypes.c_int


class Expired(BaseException):
    """Raised inside a ``run()`` that passed its deadline."""


class ScoringTimeout(ShipmlError):
    """A ``run()`` took longer than ``SCORING_TIMEOUT_MS``: Microsoft's 500 and message."""

    status = 500
    code = "scoring_timeout"

    def __init__(self, milliseconds: int) -> None:
        super().__init__(f"Scoring timeout after {milliseconds} ms")


class WorkerTimeout(ShipmlError):
    """A ``run()`` outlived ``WORKER_TIMEOUT``: the worker restarts (serving/deadlines.py).
    Under Microsoft's server gunicorn aborts the worker and its client gets gunicorn's
    HTML 500 page; here it gets Microsoft's JSON error, saying what happened."""

    status = 500
    code = "worker_timeout"

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"run() did not return within {seconds} s (WORKER_TIMEOUT); the worker restarts"
        )


def worker_timeout_s(environ: dict[str, str] | None = None) -> int:
    """``WORKER_TIMEOUT`` from the environment, in seconds (0: never), as Microsoft's
    server passes it to gunicorn's ``--timeout`` (300 when unset)."""
    raw = (os.environ if environ is None else environ).get(WORKER_VARIABLE, "").strip()
    if not raw:
        return WORKER_DEFAULT_S
    if not raw.isdigit():
        raise LoadFailed(
            f"{WORKER_VARIABLE} must be a whole number of seconds (0: no limit), not {raw!r}; "
            f"unset it for Microsoft's default ({WORKER_DEFAULT_S} s)"
        )
    return int(raw)


def timeout_ms(environ: dict[str, str] | None = None) -> int:
    """``SCORING_TIMEOUT_MS`` from the environment (Microsoft's default when unset)."""
    raw = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MS
    if not raw.isdigit() or int(raw) == 0:
        raise LoadFailed(
            f"{VARIABLE} must be a whole number of milliseconds above 0, not {raw!r}; "
            f"unset it for Microsoft's default ({DEFAULT_MS} ms)"
        )
    return int(raw)


class Watchdog:
    """The deadlines of the calls under way in this process, and the thread that ends
    the calls that pass theirs."""

    _lock: threading.Lock
    _changed: threading.Condition
    _armed: dict[int, tuple[float, int]]  # token: (deadline, thread id)
    _tokens: int
    _thread: threading.Thread | None

    def __init__(self) -> None:
        self._forgotten()

    def limit(self, seconds: float) -> Limit:
        """``with watchdog.limit(s):`` runs its body for at most ``s`` seconds, else
        :class:`Expired` is raised in it."""
        return Limit(self, seconds)

    def _arm(self, seconds: float, thread: int) -> int:
        deadline = time.monotonic() + seconds
        with self._lock:  # a C lock: no line of Python between acquiring and the block
            self._tokens += 1
            token = self._tokens
            soonest = all(deadline < d for d, _ in self._armed.values())
            self._armed[token] = (deadline, thread)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="shipml-scoring-timeout", daemon=True
                )
                self._thread.start()
            elif soonest:
                self._changed.notify()  # it sleeps until a later deadline, or none
        return token

    def _disarm(self, token: int, thread: int) -> None:
        with self._lock:
            if self._armed.pop(token, None) is None:  # fired: withdraw it if not landed
                _set_async_exc(thread, None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for token, (deadline, thread) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        _set_async_exc(thread, id(Expired))
                soonest = min((d for d, _ in self._armed.values()), default=None)
                self._changed.wait(None if soonest is None else max(0.0, soonest - now))

    def _forgotten(self) -> None:
        """A fresh state; also in a child process (a script that forks), where the
        watchdog thread was not copied."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._armed = {}
        self._tokens = 0
        self._thread = None


class Limit:
    """One call's deadline (:meth:`Watchdog.limit`).

    A class, not a generator: :class:`Expired` can land at any line of Python, and a
    generator interrupted before its ``finally`` would run that ``finally`` at some
    later garbage collection, withdrawing an exception meant for a later call. Landing
    anywhere here means the watchdog has already dropped this call: nothing is left to
    undo.
    """

    __slots__ = ("_seconds", "_thread", "_token", "_watchdog")

    def __init__(self, watchdog: Watchdog, seconds: float) -> None:
        self._watchdog, self._seconds = watchdog, seconds
        self._thread = self._token = 0

    def __enter__(self) -> None:
        self._thread = threading.get_ident()
        self._token = self._watchdog._arm(self._seconds, self._thread)

    def __exit__(self, *exc_info: object) -> None:
        self._watchdog._disarm(self._token, self._thread)


WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG._forgotten)
