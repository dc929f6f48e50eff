"""A score.py's deadlines for a call on the model thread: ``SCORING_TIMEOUT_MS``, then
``WORKER_TIMEOUT``.

Microsoft's server calls ``run()`` in a sync gunicorn worker. At ``SCORING_TIMEOUT_MS``
its alarm stops the Python code and the client gets a 500. A call that still does not
return (blocked in C code, or simply longer than the worker's timeout) stops the worker's
heartbeat, and gunicorn kills and replaces the worker ``WORKER_TIMEOUT`` seconds (300 by
default) after the call started. shipml calls ``run()`` on a model thread, which no one
can kill, so :class:`Deadlines` keeps both promises from the event loop:

- at ``SCORING_TIMEOUT_MS`` the client is answered (Microsoft's 500), whatever the thread
  is still doing (scoring/azureml/deadline.py stops the Python code itself). The next call
  waits for the thread, then gets its own full allowance, as behind a busy worker;
- ``WORKER_TIMEOUT`` after a call started, if it still has not returned, the worker
  restarts: the call's client, if still waiting, gets a 500 that says so, every request
  waiting for the thread gets 503 with ``Retry-After``, and ``on_stuck`` (the worker)
  leaves the ready board, drains and exits. gunicorn starts a new worker, which runs
  ``init()`` again. Without this, one ``run()`` stuck in C code would leave a worker
  that answers its health probes but never another request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from shipml.errors import Overloaded

log = logging.getLogger("shipml")


class Deadlines:
    """Run calls on ``executor`` within ``answer_within`` seconds, restarting the worker
    (``on_stuck``) when one has not returned ``restart_after`` seconds after it started."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: Executor | None,
        *,
        answer_within: float,
        timeout_error: Callable[[], Exception],
        restart_after: float | None = None,
        restart_error: Callable[[], Exception] = TimeoutError,
        on_stuck: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.executor = executor
        self.answer_within = answer_within
        self.timeout_error = timeout_error
        self.restart_after = restart_after
        self.restart_error = restart_error
        self.on_stuck = on_stuck
        self._overrun: asyncio.Future[Any] | None = None  # a call past its deadline, running
        # done once a call outlived restart_after: the worker is restarting
        self._restarting: asyncio.Future[None] = loop.create_future()

    @property
    def stuck(self) -> bool:
        """A call outlived ``restart_after``: the worker is restarting."""
        return self._restarting.done()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on the executor; raises ``timeout_error()`` at the deadline,
        ``restart_error()`` once the worker restarts, Overloaded while it does."""
        if self._overrun is not None and not self.stuck:
            await asyncio.wait([self._overrun, self._restarting], return_when="FIRST_COMPLETED")
        if self.stuck:
            raise Overloaded(
                f"the worker is restarting: a run() has not returned for {self.restart_after:g} "
                "s (WORKER_TIMEOUT); retry in a moment"
            )
        self._overrun = None
        call = self.loop.run_in_executor(self.executor, function, *args)
        limit = asyncio.timeout(self.answer_within)
        if self.restart_after is not None:
            watch = self.loop.call_later(self.restart_after, self._check, call, limit)
            call.add_done_callback(lambda _: watch.cancel())
        try:
            async with limit:
                return await asyncio.shield(call)
        except TimeoutError:
            if not limit.expired():  # the model's own
                raise
        self._overrun = call
        call.add_done_callback(_retrieved)  # its late result or error is nobody's
        raise self.restart_error() if self.stuck else self.timeout_error()

    def _check(self, call: asyncio.Future[Any], limit: asyncio.Timeout) -> None:
        """``restart_after`` seconds since ``call`` started: restart if it is still running."""
        if call.done():
            return
        self._restarting.set_result(None)  # whatever waits for the thread: answered now
        if not limit.expired():
            with contextlib.suppress(RuntimeError):  # its client may be gone already
                limit.reschedule(self.loop.time())  # its client: answered now
        log.error(
            "a run() has not returned for %g s (WORKER_TIMEOUT); this worker restarts, "
            "as Microsoft's server restarts a worker whose request outlives its timeout",
            self.restart_after,
        )
        if self.on_stuck is not None:
            self.on_stuck()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark an abandoned call's outcome as seen (asyncio logs unseen exceptions)."""
    if not future.cancelled():
        future.exception()
