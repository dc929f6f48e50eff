"""What payload logging costs, in CPU per request, measured without the network's noise.

32 concurrent clients (like wrk at c=32) send requests through the real ASGI app on a
uvloop event loop, with monitoring off and on (at the default sample rate, or
``--rate``), alternating in rounds. After each round the loop idles for a monitor tick
so the background work (log lines, gzip, live signals, the file written) of that round
is done inside the round; the CPU time of the process over the round, divided by the
requests, is the cost per request. CPU time, not wall time: other work on the machine
slows both alike. Run with the model store prepared by ``bench/profile_hot_path.py``::

    python -m bench.monitoring_overhead --model iris-svc
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from bench.asgi_call import predict_call

CLIENTS = 32


async def cpu_per_request(app: Any, body: bytes, count: int, settle: float) -> float:
    """CPU seconds per request over ``count`` requests from ``CLIENTS`` clients."""
    call, statuses = predict_call(app, body)

    async def client(share: int) -> None:
        for _ in range(share):
            await call()

    started = time.process_time()
    await asyncio.gather(*(client(count // CLIENTS) for _ in range(CLIENTS)))
    await asyncio.sleep(settle)  # the monitor's tick processes what the round logged
    spent = time.process_time() - started
    assert set(statuses) == {200}, statuses[:3]
    return spent / (count // CLIENTS * CLIENTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="iris-svc")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rate", type=float, help="sample rate (default: the setting's)")
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "shipml-bench-store"))
    args = parser.parse_args()
    os.environ["SHIPML_STORE"] = args.store

    import orjson

    from shipml.serving.app import create_app
    from shipml.serving.settings import ServeSettings
    from shipml.store import Store, parse_reference

    ref = f"{args.model}@latest"
    store = Store()
    local = store.fetch(parse_reference(ref))
    body = orjson.dumps(local.manifest.example)
    log = tempfile.mkdtemp(prefix="shipml-monitoring-bench-")
    base = ServeSettings(model=ref, store=store.url)
    on = base.with_overrides(monitor=True, monitor_store=log, monitor_sample_rate=args.rate)
    apps = {}
    for name, settings in (("off", base), ("on", on)):
        app = create_app(settings, lambda: local)
        app.service.load_now()
        apps[name] = app
    # One model object for both: two loaded copies can differ in speed (memory layout).
    shared = apps["off"].service.current().scorer
    apps["on"].service.loaded = replace(apps["on"].service.current(), scorer=shared)
    rate = on.monitor_sample_rate

    async def measure() -> dict[str, list[float]]:
        costs: dict[str, list[float]] = {"off": [], "on": []}
        for app in apps.values():
            await cpu_per_request(app, body, args.requests // 4, 0.0)  # warm up
        for _ in range(args.rounds):
            for name, app in apps.items():
                costs[name].append(await cpu_per_request(app, body, args.requests, 1.2))
        monitor = apps["on"].service.monitor
        assert monitor is not None
        await monitor.close()
        return costs

    costs = uvloop.run(measure())
    # On a busy machine a round is only ever slowed down: the least CPU per request is the
    # estimate least disturbed by other work; the median is shown beside it.
    for name, pick in (("least", min), ("median", statistics.median)):
        off, on_cost = pick(costs["off"]), pick(costs["on"])
        print(
            f"{args.model} ({name} of {args.rounds} rounds of {args.requests} requests from "
            f"{CLIENTS} clients, in-process): monitoring off {off * 1e6:.1f} µs CPU/request, "
            f"on (sample rate {rate:g}) {on_cost * 1e6:.1f} µs, difference "
            f"{(on_cost - off) * 1e6:+.1f} µs ({(on_cost - off) / off:+.1%})"
        )
    print(f"rounds off {[round(c * 1e6) for c in costs['off']]}")
    print(f"rounds on  {[round(c * 1e6) for c in costs['on']]}")


if __name__ == "__main__":
    main()
