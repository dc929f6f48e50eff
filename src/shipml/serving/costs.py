"""What a model call costs, measured at warm-up, and what the event loop makes of it.

One worker answers every connection from one event loop: whatever runs on it (a model
call, parsing a body, writing an answer) holds up ``/health/live`` and every other
request for as long as it runs. The rules (docs/performance.md, "Large requests"):

- a model call runs on the loop only when it is quick *for its rows*: a fast model
  (~0.2 ms for one row) still takes half a second for 100,000 rows, so the warm-up
  times one row and :data:`SAMPLE_ROWS` rows, and a batch runs inline only up to the
  rows that fit in :data:`INLINE_BELOW_SECONDS` (a thread hop costs ~50 µs: more than a
  small model's call);
- a bigger request is called in chunks of about :data:`CHUNK_SECONDS` on the model
  thread, so that small requests arriving meanwhile wait for one chunk, not for all;
- a body larger than :data:`LARGE_BODY_BYTES` is parsed, checked and its answer written
  on a thread too. Parsing JSON itself holds Python's lock (orjson does not release it),
  about 10-20 ms per MiB: the body limit (1 MiB by default) bounds that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from shipml.scoring import Scorer
from shipml.scoring.azureml import AzureMLScorer
from shipml.store import LocalModel

INLINE_BELOW_SECONDS = 0.002
CHUNK_SECONDS = 0.025
LARGE_BODY_BYTES = 64 * 1024
WARM_UP_CALLS = 5
SAMPLE_ROWS = 256
MANY_ROWS = 10_000_000


@dataclass(frozen=True)
class Cost:
    """A model's call time for one row, and for each row more (``None``: not measured)."""

    call: float
    per_row: float | None = None

    @property
    def inline(self) -> bool:
        """Whether a one-row call may run on the event loop."""
        return self.call < INLINE_BELOW_SECONDS

    def rows_within(self, seconds: float) -> int:
        """The most rows one call may have and still take at most ``seconds`` (0: none)."""
        if self.call > seconds:
            return 0
        if self.per_row is None:
            return 1
        if self.per_row <= 0:
            return MANY_ROWS
        return min(MANY_ROWS, 1 + int((seconds - self.call) / self.per_row))

    @property
    def inline_rows(self) -> int:
        return self.rows_within(INLINE_BELOW_SECONDS)

    @property
    def chunk_rows(self) -> int:
        return max(1, self.rows_within(CHUNK_SECONDS))


def measure(scorer: Scorer, model: LocalModel) -> tuple[Cost, Any]:
    """Score the example (the first call pays one-off costs), then time a few more.

    The fastest of those is the model's cost: one timed call on a busy machine can read
    2-3 times slower and send a fast model off the event loop. A batchable model is also
    timed on :data:`SAMPLE_ROWS` copies of the example, for its cost per row. Returns
    the cost and the example's answer (shown in the OpenAPI document).
    """
    example = model.manifest.example
    if example is None:
        return Cost(INLINE_BELOW_SECONDS), None  # unknown cost: keep it off the event loop
    prepared = scorer.prepare(example, orjson.dumps(example))
    output = scorer.predict(prepared.data)
    one = _fastest(scorer, prepared.data, WARM_UP_CALLS)
    per_row = None
    if scorer.batchable and one < CHUNK_SECONDS:
        many = scorer.concat([prepared.data] * SAMPLE_ROWS)
        per_row = max(0.0, (_fastest(scorer, many, 2) - one) / (SAMPLE_ROWS - 1))
    if isinstance(scorer, AzureMLScorer):
        output = scorer.jsonable(output)
    return Cost(one, per_row), output[0] if scorer.batchable else output


def _fastest(scorer: Scorer, data: Any, calls: int) -> float:
    fastest = float("inf")
    for _ in range(calls):
        started = time.perf_counter()
        scorer.predict(data)
        fastest = min(fastest, time.perf_counter() - started)
        if fastest > INLINE_BELOW_SECONDS * 10:
            break  # clearly slow: no need to spend more start-up time on it
    return fastest
