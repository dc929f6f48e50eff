"""The HTTP front's policies in isolation: which connection makes room, and the cap that
follows from the descriptor limit (the attacks themselves: tests/integration/test_http_front.py)."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator

import pytest

from shipml.serving.front import BODY, BUSY, HEAD, IDLE, Front, Limits, connection_cap


class Connection:
    def __init__(self, phase: int, since: float) -> None:
        self.phase, self.since, self.evicted = phase, since, False

    def expire(self, now: float) -> None:
        pass

    def evict(self) -> None:
        self.evicted = True


def front_with(*connections: Connection, cap: int = 16) -> Front:
    front = Front(Limits(max_connections=cap))
    front.max_connections = cap
    front.connections = set(connections)
    return front


def test_idle_connections_make_room_first_then_the_slowest_never_a_busy_one() -> None:
    busy = Connection(BUSY, 1.0)
    slow_head = Connection(HEAD, 2.0)
    slow_body = Connection(BODY, 3.0)
    idle = Connection(IDLE, 9.0)
    newcomer = Connection(HEAD, 10.0)
    front = front_with(busy, slow_head, slow_body, idle, newcomer, cap=16)  # evicts one
    assert front.make_room(newcomer)
    assert [c.evicted for c in (busy, slow_head, slow_body, idle, newcomer)] == [
        False,
        False,
        False,
        True,
        False,
    ]
    front.connections.discard(idle)
    assert front.make_room(newcomer) and slow_head.evicted and not slow_body.evicted


def test_nothing_makes_room_when_every_connection_is_being_answered() -> None:
    newcomer = Connection(HEAD, 10.0)
    front = front_with(Connection(BUSY, 1.0), Connection(BUSY, 2.0), newcomer)
    assert not front.make_room(newcomer)


def test_a_batch_makes_room_at_once() -> None:
    idle = [Connection(IDLE, float(i)) for i in range(64)]
    newcomer = Connection(HEAD, 100.0)
    front = front_with(*idle, newcomer, cap=64)
    assert front.make_room(newcomer)
    assert [c.evicted for c in idle] == [True] * 4 + [False] * 60  # the 64/16 oldest


@pytest.fixture
def descriptors() -> Iterator[int]:
    """This process's soft descriptor limit, restored afterwards; yields the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_low_soft_limit_is_raised_to_fit_the_cap(descriptors: int) -> None:
    if descriptors != resource.RLIM_INFINITY and descriptors < 4096:
        pytest.skip(f"the hard descriptor limit here is {descriptors}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, descriptors))  # as nginx and Go do
    assert connection_cap(1000) == 1000
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 1000


def test_the_cap_follows_a_low_hard_limit() -> None:
    program = (
        "import resource; from shipml.serving.front import connection_cap; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512)); "
        "print(connection_cap(1000), connection_cap(100))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    cap, small = (int(n) for n in out.stdout.split())
    assert 300 < cap < 512 - 64  # the descriptors the worker keeps for itself stay free
    assert small == 100


def test_refusals_are_logged_once_a_minute_and_counted_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    front = Front(count=lambda reason, n: counted.extend([reason] * n))
    for _ in range(5):
        front.refused("header_timeout", ("10.0.0.1", 5555))
    assert counted == ["header_timeout"] * 5
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "from 10.0.0.1 (408: headers not received within 10 s)" in lines[0]
    front.now += 61
    front.detach()  # the summary of those not logged
    assert "refused 4 more connections: 4 header_timeout" in caplog.records[-1].getMessage()
