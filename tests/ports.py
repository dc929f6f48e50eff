"""Free TCP ports for the suite's servers, never the same one twice.

A port found free by binding port 0 is one of the kernel's ephemeral ports: by the time the
server binds it, an outgoing connection (a readiness poll, a client) or a second "free" port
handed to another server started at the same moment may have taken it. The suite starts up to
70 servers at once (tests/integration/test_azureml_dropin.py), so ports come from below the
ephemeral range instead, each handed out once per process, in a slice of its own for each
pytest-xdist worker.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from pathlib import Path

_LOW = 20000
_SLICE = 1500  # ports per xdist worker


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _candidates() -> itertools.cycle[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _LOW + _SLICE * (int(worker) if worker.isdigit() else 0)
    last = min(first + _SLICE, _ephemeral_start())
    if last - first < 100:  # a wide ephemeral range: fall back to the kernel's choice
        return itertools.cycle([0])
    return itertools.cycle(range(first, last))


_NEXT = _candidates()
_LOCK = threading.Lock()  # servers are started from threads (ThreadPoolExecutor)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and not handed out before by this process."""
    with _LOCK:
        for port in _NEXT:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(sock.getsockname()[1])
    raise RuntimeError("no free port")  # unreachable: the cycle never ends
