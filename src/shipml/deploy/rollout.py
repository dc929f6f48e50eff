"""Replacing replicas without dropping a request: new ones ready first, old ones drained.

The order, shared by every runtime target:

1. start the new replicas beside the old ones (the balancer may already send them
   requests; until their model is loaded they answer 503 and it retries elsewhere);
2. wait until each passes its image's health check (``/health/ready``: model loaded and
   warmed). If one does not, remove the new ones and stop: the old ones never stopped
   serving;
3. stop the old replicas one at a time with SIGTERM: gunicorn stops accepting, finishes
   the requests in flight (within its ``graceful_timeout``) and exits; the balancer's
   connections to it are refused meanwhile and retried on another replica.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from docker.errors import APIError, NotFound

from shipml.deploy.naming import DeployError
from shipml.errors import ShipmlError
from shipml.image import engine

Say = Callable[[str], None]


def wait_ready(containers: list[Any], timeout: float, say: Say) -> float:
    """Wait until every container passes its health check; returns the seconds it took."""
    started = time.monotonic()
    for container in containers:
        left = max(timeout - (time.monotonic() - started), 1.0)
        try:
            engine.wait_healthy(container, timeout=left)
        except ShipmlError as exc:
            raise DeployError(f"the new deployment did not become ready: {exc.message}") from None
        say(f"{container.name} is ready")
    return time.monotonic() - started


def drain(containers: Iterable[Any], grace: int, say: Say) -> list[str]:
    """Stop each container gracefully (SIGTERM, then SIGKILL after ``grace`` s), remove it."""
    stopped = []
    for container in containers:
        with contextlib.suppress(NotFound):
            started = time.monotonic()
            container.stop(timeout=grace)
            container.remove()
            say(f"{container.name} drained and removed ({time.monotonic() - started:.1f}s)")
            stopped.append(container.name)
    return stopped


def discard(containers: Iterable[Any]) -> None:
    """Remove containers that never served (a failed rollout), at once."""
    for container in containers:
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)


def failed(exc: ShipmlError, old: list[Any]) -> DeployError:
    """The error of a rollout that stopped: what went wrong, and what still serves."""
    if old:
        names = ", ".join(c.name for c in old)
        tail = f"\nThe previous deployment ({names}) is still serving; nothing was changed."
    else:
        tail = "\nNothing was left running."
    return DeployError(exc.message + tail)
