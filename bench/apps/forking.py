"""Workers for the bench's own apps: fork ``count`` children that each run ``serve``, pass
SIGTERM and SIGINT on to them, and wait for all of them (what an app server's master does,
and no more)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def run_workers(count: int, serve: Callable[[], None]) -> None:
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            serve()
            os._exit(0)
        children.append(pid)

    def stop(*_: object) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)
