"""What batching costs a lone request, measured without the network's noise.

Sequential requests (one at a time, like wrk at c=1) go through the real ASGI app on a
uvloop event loop, with batching on and off, alternating in rounds; the difference is
what the batcher's scheduling adds (one loop tick to let same-tick requests join, one
for the request's task to wake up). Run with the model store prepared by
``bench/profile_hot_path.py``::

    python -m bench.batching_overhead --model iris-svc
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from bench.asgi_call import predict_call


async def per_request(app: Any, body: bytes, count: int) -> float:
    """Mean seconds per request over ``count`` sequential requests."""
    call, statuses = predict_call(app, body)
    started = time.perf_counter()
    for _ in range(count):
        await call()
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, statuses[:3]
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="iris-svc")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "shipml-bench-store"))
    args = parser.parse_args()
    os.environ["SHIPML_STORE"] = args.store

    import orjson

    from shipml.serving.app import create_app
    from shipml.serving.settings import ServeSettings
    from shipml.store import Store, parse_reference

    ref = f"{args.model}@latest"
    local = Store().fetch(parse_reference(ref))
    body = orjson.dumps(local.manifest.example)
    apps = {}
    for batching in (True, False):
        app = create_app(ServeSettings(model=ref, batching=batching), lambda: local)
        app.service.load_now()
        apps[batching] = app
    # One model object for both: two loaded copies of the same pipeline can differ by
    # ~10 % in speed (memory layout), which would swamp what is measured here.
    shared = apps[True].service.current().scorer
    apps[False].service.loaded = replace(apps[False].service.current(), scorer=shared)

    async def measure() -> dict[bool, list[float]]:
        times: dict[bool, list[float]] = {True: [], False: []}
        for app in apps.values():
            await per_request(app, body, args.requests // 4)  # warm up
        for _ in range(args.rounds):
            for batching, app in apps.items():
                times[batching].append(await per_request(app, body, args.requests))
        return times

    times = uvloop.run(measure())
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{args.model}: batching on {on * 1e6:.1f} µs/request, off {off * 1e6:.1f} µs/request, "
        f"difference {(on - off) * 1e6:+.1f} µs (medians of {args.rounds} rounds of "
        f"{args.requests} sequential requests, in-process, uvloop)"
    )


if __name__ == "__main__":
    main()
