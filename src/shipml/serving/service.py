"""The transport-free heart of the service: load, warm, predict, describe.

:class:`Service` knows nothing of HTTP. The ASGI app (``/predict``) and the Open
Inference Protocol face (``/v2/...``) both translate their requests into calls here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shipml import __version__
from shipml.errors import InvalidJSON, LoadFailed, ModelError, NotFound, NotReady, ShipmlError
from shipml.monitoring.recorder import BODY, RECORDS, TABLE, Monitor, monitor_for
from shipml.scoring import InputSchema, Prepared, Scorer, load_scorer
from shipml.scoring.azureml import AzureMLScorer, ScoreAnswer, ScoreCall
from shipml.serving.batching import Batcher
from shipml.serving.metrics import Metrics
from shipml.serving.settings import ServeSettings
from shipml.store import LocalModel, library_versions

log = logging.getLogger("shipml")
# A model call quicker than this runs on the event loop: a thread hop costs ~50 µs,
# which on a small model is more than the model itself.
INLINE_BELOW_SECONDS = 0.002
WARM_UP_CALLS = 5
RETRY_DELAYS = (1, 2, 5, 10, 30)
WORKER_BOOT_ERROR = 3  # gunicorn stops the whole server when a worker exits with it


def _listing(detail: dict[str, Any]) -> str:
    files = detail.get("model_files")
    if not isinstance(files, list) or not files:
        return ""
    return f"Model directory contents ({detail.get('model_dir')}):\n  " + "\n  ".join(files)


class Service:
    """One model, loaded once per worker, answering predictions.

    ``source`` fetches and verifies the model (from a store, a cache or a file); it
    runs in a thread, retried with backoff, so a store that is briefly unreachable at
    start leaves the service alive and not ready instead of crash-looping.
    """

    def __init__(
        self,
        source: Callable[[], LocalModel],
        metrics: Metrics,
        description: str = "the model",
        settings: ServeSettings | None = None,
    ) -> None:
        self._source = source
        self.description = description
        self.metrics = metrics
        self.settings = settings or ServeSettings()
        self.model: LocalModel | None = None
        self.scorer: Scorer | None = None
        self.ready = False
        self.inline = False
        self.load_error: str | None = None
        self.load_failure: LoadFailed | None = None  # final: the model's own code failed
        self.example_output: Any = None
        self.runtime = library_versions()  # what this process runs, beside what it was trained with
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipml-model")
        self._loader: asyncio.Task[None] | None = None
        self._batcher: Batcher | None = None
        self._info: dict[str, Any] | None = None
        self._fields: dict[str, str] | None = None
        self.monitor: Monitor | None = None  # payload logging (settings.monitor)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin loading in the background; ``/health/ready`` turns 200 when done."""
        self._loader = asyncio.get_running_loop().create_task(self._load_with_retries())

    def load_now(self) -> None:
        """Load synchronously, raising the first error (for the command line)."""
        self._load()

    async def stop(self) -> None:
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        if self.monitor is not None:
            await self.monitor.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _load_with_retries(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            log.info("loading %s (attempt %d)", self.description, attempt)
            try:
                await loop.run_in_executor(self._executor, self._load)
                return
            except LoadFailed as exc:  # the same code would fail the same way: no retry
                self._failed_for_good(exc)
                return
            except Exception as exc:  # one clear line per attempt, never a crash loop
                delay = RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)]
                reason = exc.message if isinstance(exc, ShipmlError) else repr(exc)
                self.load_error = reason
                log.error(
                    "model not loaded (attempt %d): %s; retrying in %ds", attempt, reason, delay
                )
                await asyncio.sleep(delay)

    def _failed_for_good(self, exc: LoadFailed) -> None:
        """Log the model code's first error in full, once, and stay alive but not ready.

        ``shipml serve`` sets ``SHIPML_LOAD_ERROR_FILE``: the worker then writes the
        message there and exits with gunicorn's boot-error status, which stops the
        server, so the command prints one clear error instead of serving nothing.
        """
        self.load_failure, self.load_error = exc, exc.message
        log.error(
            "model not loaded: %s\n%s%s",
            exc.message,
            exc.detail.get("traceback", ""),
            _listing(exc.detail),
        )
        report = os.environ.get("SHIPML_LOAD_ERROR_FILE")
        if report:
            with contextlib.suppress(OSError):
                Path(report).write_text(exc.message)
            os._exit(WORKER_BOOT_ERROR)

    def _load(self) -> None:
        started = time.perf_counter()
        model = self._source()
        self.runtime = library_versions(model.manifest.libraries)
        scorer = load_scorer(model)
        warm, self.example_output = self._warm_up(scorer, model)
        if self.monitor is None:
            self.monitor = monitor_for(self.settings, model, scorer, self.metrics.registry)
        self.model, self.scorer = model, scorer
        self.inline = warm < INLINE_BELOW_SECONDS
        self._batcher = None
        self._info = None
        self._fields = None
        manifest = model.manifest
        self.metrics.model_info.labels(manifest.name, str(manifest.version), model.digest).set(1)
        self.metrics.ready.set(1)
        self.load_error = None
        self.ready = True
        log.info(
            "serving %s (%s) loaded in %.2fs; a prediction takes %.2f ms",
            manifest.ref,
            model.digest[:19],
            time.perf_counter() - started,
            warm * 1000,
        )

    @staticmethod
    def _warm_up(scorer: Scorer, model: LocalModel) -> tuple[float, Any]:
        """Score the example (the first call pays one-off costs), then time a few more.

        The fastest of those is the model's cost: one timed call on a busy machine can
        read 2-3 times slower and send a fast model off the event loop. Returns the time
        and the example's answer (shown in the OpenAPI document).
        """
        example = model.manifest.example
        if example is None:
            return INLINE_BELOW_SECONDS, None  # unknown cost: keep it off the event loop
        prepared = scorer.prepare(example, orjson.dumps(example))
        output = scorer.predict(prepared.data)
        fastest = float("inf")
        for _ in range(WARM_UP_CALLS):
            started = time.perf_counter()
            output = scorer.predict(prepared.data)
            fastest = min(fastest, time.perf_counter() - started)
            if fastest > INLINE_BELOW_SECONDS * 10:
                break  # clearly slow: no need to spend more start-up time on it
        if isinstance(scorer, AzureMLScorer):
            output = scorer.jsonable(output)
        return fastest, output[0] if scorer.batchable else output

    # -- requests --------------------------------------------------------------------------

    def _require(self) -> Scorer:
        if not self.ready or self.scorer is None:
            if self.load_failure is not None:
                raise self.load_failure
            raise NotReady("the model is still loading; retry in a moment")
        return self.scorer

    def score_script(self) -> AzureMLScorer:
        """The loaded ``score.py`` scorer, for the Azure ML routes (404 for other models)."""
        scorer = self._require()
        if not isinstance(scorer, AzureMLScorer):
            raise NotFound(
                "/score and /swagger.json serve Azure ML score.py models; this model "
                "answers at /predict"
            )
        return scorer

    async def score(self, call: ScoreCall, request_id: str) -> ScoreAnswer:
        """One request to a ``score.py`` model, as Microsoft's server would answer it."""
        scorer = self.score_script()
        if call.method == "OPTIONS" and not scorer.raw:
            return ScoreAnswer(200, b"", "text/html; charset=utf-8")  # Microsoft's answer
        prepared = scorer.parse(call)
        monitor = self.monitor
        started = monitor.sampled() if monitor is not None else None
        output = await self._submit(scorer, prepared.data, request_id)
        try:
            if self.inline:
                answer = scorer.answer(output)
            else:
                # A returned response may stream from the script's own generator: off the loop.
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self._executor, scorer.answer, output)
            if started is not None and monitor is not None:
                given = (call.body, answer.status, answer.content_type, answer.body)
                monitor.record(BODY, request_id, started, given, None)
            return answer
        except ShipmlError:
            raise
        except Exception as exc:
            log.exception("request %s: the response raised %s", request_id, type(exc).__name__)
            raise ModelError(
                f"the model's response failed ({type(exc).__name__}); the service log "
                f"has the details under request id {request_id}"
            ) from None

    async def predict(self, body: bytes, request_id: str) -> Any:
        """Parse, validate and score one ``/predict`` body; returns the JSON-able answer."""
        self._require()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc}") from None
        return await self.predict_payload(payload, body, request_id)

    async def predict_payload(self, payload: Any, body: bytes, request_id: str) -> Any:
        scorer = self._require()
        return await self._score(scorer, scorer.prepare(payload, body), request_id, payload)

    async def predict_features(
        self, features: np.ndarray | list[np.ndarray], request_id: str
    ) -> Any:
        """Score rows whose features were parsed and checked elsewhere (the Open Inference
        Protocol face reads tensors itself): an ``[N, F]`` matrix of numbers, or one array
        per schema feature, in schema order. Scorers of a feature table
        (``prepare_table``) get it without a Python object per value; the others get the
        records a ``/predict`` body of the same rows would hold."""
        scorer = self._require()
        prepare_table = getattr(scorer, "prepare_table", None)
        if prepare_table is not None:
            return await self._score(scorer, prepare_table(features), request_id, features, TABLE)
        columns = list(features.T) if isinstance(features, np.ndarray) else features
        names = list(self.input_fields())
        records = [
            dict(zip(names, row, strict=True))
            for row in zip(*(column.tolist() for column in columns), strict=True)
        ]
        return await self.predict_payload(records, orjson.dumps(records), request_id)

    async def _score(
        self,
        scorer: Scorer,
        prepared: Prepared,
        request_id: str,
        given: Any = None,
        kind: str = RECORDS,
    ) -> Any:
        """Score one request; every ``/predict`` and ``/v2`` answer passes here, and a
        sampled one is handed to the monitor (``given``: the request's input)."""
        if prepared.count == 0 and scorer.batchable:
            return []
        monitor = self.monitor
        started = monitor.sampled() if monitor is not None else None
        result = await self._submit(scorer, prepared.data, request_id, prepared.count)
        if scorer.batchable and prepared.single:
            result = result[0]
        elif isinstance(scorer, AzureMLScorer):
            result = scorer.jsonable(result)
        if started is not None and monitor is not None:
            monitor.record(kind, request_id, started, given, result)
        return result

    async def _submit(self, scorer: Scorer, data: Any, request_id: str, rows: int = 1) -> Any:
        try:
            return await self._batcher_for(scorer).submit(data, rows, request_id)
        except ShipmlError:
            raise
        except Exception as exc:
            log.exception("request %s: the model raised %s", request_id, type(exc).__name__)
            raise ModelError(
                f"the model failed on this input ({type(exc).__name__}); the service log "
                f"has the details under request id {request_id}"
            ) from None

    def _batcher_for(self, scorer: Scorer) -> Batcher:
        """This loop's batcher, made on first use (the model loads in a thread)."""
        batcher = self._batcher
        if batcher is None or batcher.loop is not asyncio.get_running_loop():
            settings = self.settings
            batcher = self._batcher = Batcher(
                scorer,
                coalesce=scorer.batchable and settings.batching,
                max_batch_size=settings.max_batch_size,
                max_latency=settings.max_latency_ms / 1000,
                max_queue=settings.max_queue,
                executor=None if self.inline else self._executor,
                metrics=self.metrics,
            )
        return batcher

    def input_fields(self) -> dict[str, str]:
        """Field name → JSON type, in feature order (compiled once per loaded model)."""
        self._require()
        if self._fields is None:
            assert self.model is not None
            schema = self.model.manifest.input_schema
            self._fields = InputSchema(schema).fields if schema else {}
        return self._fields

    def info(self) -> dict[str, Any]:
        """The model card: what ``/info`` answers (built once per loaded model)."""
        scorer = self._require()
        if self._info is not None:
            return self._info
        assert self.model is not None
        manifest, digest = self.model.manifest, self.model.digest
        self._info = {
            "name": manifest.name,
            "version": manifest.version,
            "ref": manifest.ref,
            "digest": digest,
            "created": manifest.created,
            "contract": manifest.contract,
            "framework": manifest.framework,
            "libraries": manifest.libraries,
            "runtime": self.runtime,
            "engine": getattr(scorer, "engine", None) or manifest.framework.get("name"),
            "task": getattr(scorer, "task", None),
            "classes": getattr(scorer, "classes", None),
            # a score.py decorated with inference_schema declares its own
            "input_schema": manifest.input_schema or getattr(scorer, "input_schema", None),
            "output_schema": scorer.output_schema,
            "example": manifest.example
            if manifest.example is not None
            else getattr(scorer, "example", None),
            "metrics": manifest.metrics,
            "data": manifest.data,
            "source": manifest.source,
            "server": {"name": "shipml", "version": __version__},
        }
        return self._info
