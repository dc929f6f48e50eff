"""The constant JSON answer on socketify (uWebSockets in C++, called through cffi): an HTTP
layer that is neither ASGI nor Python, the last alternative issue 16's "measure before
choosing" left unmeasured. Not a server: no limits, no errors beyond uWebSockets' own.

``--defer`` answers on the event loop's next turn instead of inside the request callback,
as a batching server must (the answer exists only once the batch has run); without it the
answer is written from within uWebSockets' callback, the fastest this layer can go.

python socketify_app.py --port 8000 --workers 2 [--defer]
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from forking import run_workers  # beside this file
from socketify import App, AppListenOptions

BODY = (
    b'{"label":"virginica","probabilities":'
    b'{"setosa":0.0081,"versicolor":0.0202,"virginica":0.9717}}'
)


def answer(res: Any) -> None:
    if not res.aborted:
        res.cork(lambda res: res.write_header("content-type", "application/json").end(BODY))


def serve(port: int, defer: bool) -> None:
    app = App()
    call_soon = app.loop.loop.call_soon  # the asyncio loop socketify drives uWebSockets from

    def predict(res: Any, req: Any) -> None:
        def on_data(res: Any, chunk: bytes | None, is_end: bool) -> None:
            if is_end:  # read the whole body, as a real server must
                if defer:
                    call_soon(answer, res)
                else:
                    answer(res)

        res.on_aborted(lambda res: None)
        res.on_data(on_data)

    app.post("/predict", predict)
    app.listen(AppListenOptions(port=port, host="127.0.0.1"))
    app.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--defer", action="store_true")
    args = parser.parse_args()

    def worker() -> None:  # each listens on the port itself (SO_REUSEPORT)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        serve(args.port, args.defer)

    run_workers(args.workers, worker)


if __name__ == "__main__":
    main()
