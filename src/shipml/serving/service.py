"""The transport-free heart of the service: load, warm, predict, describe.

:class:`Service` knows nothing of HTTP. The ASGI app (``/predict``) and the Open
Inference Protocol face (``/v2/...``) both translate their requests into calls here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from shipml import __version__
from shipml.errors import LoadFailed, ModelError, NotFound, NotReady, ShipmlError
from shipml.monitoring.recorder import BODY, RECORDS, TABLE, Monitor, monitor_for
from shipml.scoring import InputSchema, Prepared, Scorer, load_scorer
from shipml.scoring.azureml import AzureMLScorer, ScoreAnswer, ScoreCall
from shipml.scoring.azureml.answers import RUN_FAILED
from shipml.serving import json_body
from shipml.serving.batching import Batcher
from shipml.serving.contract import closed_fields
from shipml.serving.costs import LARGE_BODY_BYTES, Cost, measure
from shipml.serving.deadlines import Deadlines
from shipml.serving.metrics import Metrics
from shipml.serving.settings import ServeSettings
from shipml.serving.sizing import decided, limit_threads
from shipml.serving.sizing import report as sizing_report
from shipml.store import LocalModel, library_versions

log = logging.getLogger("shipml")
RETRY_DELAYS = (1, 2, 5, 10, 30)
WORKER_BOOT_ERROR = 3  # gunicorn stops the whole server when a worker exits with it


@dataclass(frozen=True)
class Loaded:
    """A model ready to serve, with what was worked out from it at load.

    Made whole by one load and swapped in whole (:attr:`Service.loaded`), so a request
    sees one model's scorer, costs, fields and card, never half of a new one.
    """

    model: LocalModel
    scorer: Scorer
    cost: Cost
    example_output: Any  # the model's answer to its own example (the OpenAPI example)
    closed: frozenset[str]  # text fields the model takes only as trained
    runtime: dict[str, str]  # what this process runs, beside what it was trained with
    sizing: dict[str, Any]  # workers and native threads, and the pools the model thread has

    @property
    def inline(self) -> bool:
        """Whether a one-row call runs on the event loop (serving/costs.py)."""
        return self.cost.inline

    @cached_property
    def fields(self) -> dict[str, str]:
        """Field name → JSON type, in feature order."""
        schema = self.model.manifest.input_schema
        return InputSchema(schema).fields if schema else {}

    @cached_property
    def info(self) -> dict[str, Any]:
        """The model card: what ``/info`` answers."""
        scorer, manifest = self.scorer, self.model.manifest
        return {
            "name": manifest.name,
            "version": manifest.version,
            "ref": manifest.ref,
            "digest": self.model.digest,
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
            "sizing": self.sizing,
        }


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
        self.loaded: Loaded | None = None  # set once, whole, by a load that succeeded
        self.load_error: str | None = None  # the last failed attempt's reason
        self.load_failure: LoadFailed | None = None  # final: the model's own code failed
        self.attempt = 0  # load attempts so far (the one running included)
        self.attempt_started = 0.0  # time.monotonic() when the current attempt began
        self.retry_at: float | None = None  # when the next attempt starts, after a failure
        self._loaded: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipml-model")
        # large bodies are parsed and their answers written here, off the event loop
        self._large = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipml-large")
        self._loader: asyncio.Task[None] | None = None
        self._batcher: Batcher | None = None
        self.monitor: Monitor | None = None  # payload logging (settings.monitor)
        # Called on the event loop in the same step that makes the service ready: a worker
        # joins the ready board before any request can see `ready` (serving/worker.py).
        self.on_ready: Callable[[], None] | None = None
        self.on_stuck: Callable[[], None] | None = None  # the worker's restart (deadlines.py)

    @property
    def ready(self) -> bool:
        return self.loaded is not None

    @property
    def scorer(self) -> Scorer | None:
        return self.loaded.scorer if self.loaded is not None else None

    @property
    def model(self) -> LocalModel | None:
        return self.loaded.model if self.loaded is not None else None

    @property
    def inline(self) -> bool:
        """Whether a one-row call runs on the event loop (False until loaded)."""
        return self.loaded is not None and self.loaded.inline

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin loading in the background; ``/health/ready`` turns 200 when done."""
        self._loaded = asyncio.Event()
        self._loader = asyncio.get_running_loop().create_task(self._load_with_retries())

    async def wait_ready(self) -> None:
        """Return once the model is loaded and warmed (never, if loading fails for good)."""
        if self.ready:
            return
        if self._loaded is None:
            self._loaded = asyncio.Event()
        await self._loaded.wait()

    def load_now(self) -> None:
        """Load synchronously, raising the first error (for the command line)."""
        self._install(self._build())

    async def stop(self) -> None:
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        if self.monitor is not None:
            await self.monitor.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._large.shutdown(wait=False, cancel_futures=True)

    async def _load_with_retries(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.attempt += 1
            attempt = self.attempt
            self.attempt_started, self.retry_at = time.monotonic(), None
            log.info("loading %s (attempt %d)", self.description, attempt)
            try:
                loaded = await loop.run_in_executor(self._executor, self._build)
            except LoadFailed as exc:  # the same code would fail the same way: no retry
                self._failed_for_good(exc)
                return
            except Exception as exc:  # one clear line per attempt, never a crash loop
                delay = RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)]
                reason = exc.message if isinstance(exc, ShipmlError) else repr(exc)
                self.load_error = reason
                self.retry_at = time.monotonic() + delay
                log.error(
                    "model not loaded (attempt %d): %s; retrying in %ds", attempt, reason, delay
                )
                await asyncio.sleep(delay)
            else:
                self._install(loaded)
                if self.on_ready is not None:
                    self.on_ready()
                if self._loaded is not None:
                    self._loaded.set()
                return

    def _failed_for_good(self, exc: LoadFailed) -> None:
        """Log the model code's first error in full, once, and stay alive but not ready.

        ``shipml serve`` sets ``SHIPML_LOAD_ERROR_FILE``: the worker then writes the
        message there and exits with gunicorn's boot-error status, which stops the
        server, so the command prints one clear error instead of serving nothing.
        """
        self.load_failure, self.load_error = exc, exc.message
        report = os.environ.get("SHIPML_LOAD_ERROR_FILE")
        if report and not _first_to_report(report, exc.message):
            # Every worker loads the same code and fails the same way: one traceback is
            # enough, the first worker's.
            log.error("model not loaded: %s (traceback above)", exc.message)
        else:
            log.error(
                "model not loaded: %s\n%s%s",
                exc.message,
                exc.detail.get("traceback", ""),
                _listing(exc.detail),
            )
        if report:
            os._exit(WORKER_BOOT_ERROR)

    def _build(self) -> Loaded:
        """Fetch, load and warm the model (on the model thread); nothing is served yet."""
        started = time.perf_counter()
        model = self._source()
        runtime = library_versions(model.manifest.libraries)
        scorer = load_scorer(model)
        limit_threads(decided(self.settings).threads)  # pools its libraries just started
        cost, example_output = measure(scorer, model)
        closed = closed_fields(scorer, model.manifest.example, model.manifest.input_schema)
        if self.monitor is None:
            self.monitor = monitor_for(self.settings, model, scorer, self.metrics.registry)
        sizing = sizing_report(self.settings)  # read on the thread that runs the model
        log.info(
            "serving %s (%s) loaded in %.2fs; a prediction takes %.2f ms",
            model.manifest.ref,
            model.digest[:19],
            time.perf_counter() - started,
            cost.call * 1000,
        )
        return Loaded(model, scorer, cost, example_output, closed, runtime, sizing)

    def _install(self, loaded: Loaded) -> None:
        """Serve ``loaded`` from now on (``ready`` turns True here)."""
        self._batcher = None
        self.loaded = loaded
        manifest, digest = loaded.model.manifest, loaded.model.digest
        self.metrics.model_info.labels(manifest.name, str(manifest.version), digest).set(1)
        self.metrics.ready.set(1)
        self.load_error = None

    # -- requests --------------------------------------------------------------------------

    def _require(self) -> Scorer:
        return self.current().scorer

    def current(self) -> Loaded:
        """The loaded model, or the error saying why there is none yet."""
        loaded = self.loaded
        if loaded is None:
            if self.load_failure is not None:
                raise self.load_failure
            raise self.not_ready()
        return loaded

    def not_ready(self) -> NotReady:
        """Why the model is not loaded yet: the attempt running, or the last one's error."""
        now = time.monotonic()
        if self.load_error is not None and self.retry_at is not None:
            wait = max(0.0, self.retry_at - now)
            return NotReady(
                f"the model is not loaded: attempt {self.attempt} failed: {self.load_error}; "
                f"attempt {self.attempt + 1} starts in {wait:.0f} s",
                {"state": "retrying", "attempt": self.attempt, "reason": self.load_error},
            )
        detail: dict[str, object] = {"state": "loading", "attempt": max(1, self.attempt)}
        since = f", for {now - self.attempt_started:.0f} s" if self.attempt else ""
        if self.load_error is not None:
            detail["reason"] = self.load_error
            return NotReady(
                f"the model is loading (attempt {self.attempt}{since}); the last attempt "
                f"failed: {self.load_error}",
                detail,
            )
        return NotReady(
            f"the model is loading (attempt {max(1, self.attempt)}{since}); retry in a moment",
            detail,
        )

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
            # Microsoft's answer to OPTIONS for a script that does not take the request
            return ScoreAnswer(200, b"", "text/html; charset=utf-8", [(RUN_FAILED, "False")])
        large = len(call.body) > LARGE_BODY_BYTES
        prepared = await self.off_loop(scorer.parse, call) if large else scorer.parse(call)
        monitor = self.monitor
        started = monitor.sampled() if monitor is not None else None
        output = await self._submit(scorer, prepared.data, request_id, inline=not large)
        try:
            if self.current().inline and not large:
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

    async def off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` on the thread for large requests (serving/costs.py)."""
        return await asyncio.get_running_loop().run_in_executor(self._large, function, *args)

    async def predict(self, body: bytes, request_id: str) -> Any:
        """Parse, validate and score one ``/predict`` body; returns the JSON-able answer."""
        scorer = self._require()
        if len(body) > LARGE_BODY_BYTES:
            payload, prepared = await self.off_loop(self._parse, scorer, body)
            return await self._score(scorer, prepared, request_id, payload, inline=False)
        payload, prepared = self._parse(scorer, body)
        return await self._score(scorer, prepared, request_id, payload)

    @staticmethod
    def _parse(scorer: Scorer, body: bytes) -> tuple[Any, Prepared]:
        """The body's JSON (what monitoring logs) and the scorer's model input from it."""
        payload = json_body.loads(body)
        return payload, scorer.prepare(payload, body)

    async def predict_payload(self, payload: Any, body: bytes, request_id: str) -> Any:
        scorer = self._require()
        if len(body) > LARGE_BODY_BYTES:
            prepared = await self.off_loop(scorer.prepare, payload, body)
            return await self._score(scorer, prepared, request_id, payload, inline=False)
        return await self._score(scorer, scorer.prepare(payload, body), request_id, payload)

    async def predict_features(
        self, features: np.ndarray | list[np.ndarray], request_id: str, large: bool = False
    ) -> Any:
        """Score rows whose features were parsed and checked elsewhere (the Open Inference
        Protocol face reads tensors itself): an ``[N, F]`` matrix of numbers, or one array
        per schema feature, in schema order. Scorers of a feature table
        (``prepare_table``) get it without a Python object per value; the others get the
        records a ``/predict`` body of the same rows would hold."""
        scorer = self._require()
        prepare_table = getattr(scorer, "prepare_table", None)
        if prepare_table is not None:
            if large:
                prepared = await self.off_loop(prepare_table, features)
                return await self._score(
                    scorer, prepared, request_id, features, TABLE, inline=False
                )
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
        *,
        inline: bool = True,
    ) -> Any:
        """Score one request; every ``/predict`` and ``/v2`` answer passes here, and a
        sampled one is handed to the monitor (``given``: the request's input)."""
        if prepared.count == 0 and scorer.batchable:
            return []
        monitor = self.monitor
        started = monitor.sampled() if monitor is not None else None
        result = await self._submit(scorer, prepared.data, request_id, prepared.count, inline)
        if scorer.batchable and prepared.single:
            result = result[0]
        elif isinstance(scorer, AzureMLScorer):
            result = scorer.jsonable(result)
        if started is not None and monitor is not None:
            monitor.record(kind, request_id, started, given, result)
        return result

    async def _submit(
        self, scorer: Scorer, data: Any, request_id: str, rows: int = 1, inline: bool = True
    ) -> Any:
        try:
            return await self._batcher_for(scorer).submit(data, rows, request_id, inline)
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
            settings, cost = self.settings, self.current().cost
            batcher = self._batcher = Batcher(
                scorer,
                coalesce=scorer.batchable and settings.batching,
                max_batch_size=settings.max_batch_size,
                max_latency=settings.max_latency_ms / 1000,
                max_queue=settings.max_queue,
                executor=self._executor,
                inline_rows=cost.inline_rows if scorer.batchable else int(cost.inline),
                chunk_rows=cost.chunk_rows if scorer.batchable else 0,
                metrics=self.metrics,
                deadlines=self._deadlines(scorer),
            )
        return batcher

    def _deadlines(self, scorer: Scorer) -> Deadlines | None:
        """A score.py's ``SCORING_TIMEOUT_MS`` and ``WORKER_TIMEOUT`` (serving/deadlines.py)."""
        if not isinstance(scorer, AzureMLScorer):
            return None
        return Deadlines(
            asyncio.get_running_loop(),
            self._executor,
            answer_within=scorer.call_timeout,
            timeout_error=scorer.timed_out,
            restart_after=scorer.restart_after,
            restart_error=scorer.worker_timed_out,
            on_stuck=self._stuck,
        )

    def _stuck(self) -> None:
        """A ``run()`` outlived ``WORKER_TIMEOUT``: the worker restarts."""
        if self.on_stuck is not None:
            self.on_stuck()

    def input_fields(self) -> dict[str, str]:
        """Field name → JSON type, in feature order (compiled once per loaded model)."""
        return self.current().fields

    def info(self) -> dict[str, Any]:
        """The model card: what ``/info`` answers (built once per loaded model)."""
        return self.current().info


def _first_to_report(path: str, message: str) -> bool:
    """Write ``message`` to ``path`` unless another worker already did; whether this one
    did (also when the file cannot be written: then each worker logs it all)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError:
        return True
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(message)
    return True
