"""Live signals in ``/metrics``: what the model answers and what it is asked, per worker.

Registered on the service's registry when monitoring is on (and only then: off, none of
these exist and nothing is counted). They are updated by the worker's background task
from the sampled requests (every request at ``monitor_sample_rate: 1``), so they cost
nothing on the request path; with a lower rate, compare ratios rather than counts.

- ``shipml_predictions_total{label}``: answers per predicted class (a classifier's
  label, a ``score.py`` answer's ``label``), at most ``MAX_LABELS`` labels, the rest
  counted as ``other``;
- ``shipml_prediction_score``: histogram of the probability of the predicted class, or
  of a ``score.py`` answer's ``score`` in [0, 1];
- ``shipml_prediction_value``: histogram of a regressor's predictions, with the deciles
  of its answers to the training sample as buckets (versions saved with a reference);
- ``shipml_input_issues_total{field,issue}`` and
  ``shipml_requests_with_input_issues_total{issue}``: ``missing`` (null or absent),
  ``out_of_range`` (a number outside the training range) and ``unseen_category``;
- ``shipml_monitor_requests_total``: sampled requests seen (the denominator);
- ``shipml_monitor_records_written_total``, ``shipml_monitor_records_dropped_total{reason}``
  and ``shipml_monitor_write_errors_total``: what the payload log wrote and lost.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
MAX_LABELS = 50
MISSING, OUT_OF_RANGE, UNSEEN = "missing", "out_of_range", "unseen_category"


class LiveSignals:
    """The instruments, and the checks of one logged request against the profile."""

    def __init__(
        self,
        registry: CollectorRegistry,
        profile: dict[str, Any] | None,
        names: tuple[str, ...],
        labels: list[Any] | None = None,
    ) -> None:
        fields = (profile or {}).get("fields") or {}
        self.names = names
        self.ranges = {
            name: (spec["min"], spec["max"])
            for name, spec in fields.items()
            if spec.get("kind") == "number" and "min" in spec and "max" in spec
        }
        self.categories = {
            name: frozenset(spec.get("values") or ())
            for name, spec in fields.items()
            if spec.get("kind") == "category" and spec.get("complete")
        }
        # One tuple per field, looked up once: (name, low, high, known categories).
        self._plan = [
            (
                name,
                *(self.ranges.get(name) or (None, None)),
                self.categories.get(name),
            )
            for name in names
        ]
        self.known_labels = {str(label) for label in labels or ()}
        self._seen_labels: set[str] = set()
        self.requests = Counter(
            "shipml_monitor_requests", "Sampled requests seen by monitoring", registry=registry
        )
        self.predictions = Counter(
            "shipml_predictions", "Answers per predicted label", ["label"], registry=registry
        )
        self.score = Histogram(
            "shipml_prediction_score",
            "Probability of the predicted class, or a score.py answer's score",
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        edges = ((profile or {}).get("outputs") or {}).get("prediction", {}).get("edges")
        self.value: Histogram | None = None
        if edges and len(edges) > 1:
            self.value = Histogram(
                "shipml_prediction_value",
                "A regressor's predictions (buckets: deciles on the training sample)",
                buckets=(*edges[1:-1], float(edges[-1])),
                registry=registry,
            )
        self.issues = Counter(
            "shipml_input_issues",
            "Input values missing, out of the training range or of an unseen category",
            ["field", "issue"],
            registry=registry,
        )
        self.requests_with_issues = Counter(
            "shipml_requests_with_input_issues",
            "Sampled requests with at least one input issue of this kind",
            ["issue"],
            registry=registry,
        )
        self.written = Counter(
            "shipml_monitor_records_written",
            "Requests written to the payload log",
            registry=registry,
        )
        self.dropped = Counter(
            "shipml_monitor_records_dropped",
            "Requests sampled but not written (buffer_full: the sink is slow or down and "
            "the buffer is full; write_failed: the file could not be written)",
            ["reason"],
            registry=registry,
        )
        self.write_errors = Counter(
            "shipml_monitor_write_errors",
            "Payload log files that could not be written",
            registry=registry,
        )
        # Counted in plain Python per request, written to the Prometheus values once a
        # tick (flush): a Prometheus write costs about a microsecond, a dict increment a
        # tenth of that.
        self._requests = 0
        self._labels: dict[str, int] = {}
        self._issues: dict[tuple[str, str], int] = {}
        self._with_issues: dict[str, int] = {}
        self._scores: list[float] = []
        self._values: list[float] = []

    def observe(self, inputs: list[Any] | None, outputs: list[Any] | None) -> None:
        """Count one logged request (written out by :meth:`flush`)."""
        self._requests += 1
        if inputs and (self.ranges or self.categories or self.names):
            found: set[str] = set()
            for record in inputs:
                if isinstance(record, dict):
                    self._check(record, found)
            for issue in found:
                self._with_issues[issue] = self._with_issues.get(issue, 0) + 1
        for answer in outputs or ():
            if isinstance(answer, dict):
                self._answer(answer)

    def _check(self, record: dict[str, Any], found: set[str]) -> None:
        issues = self._issues
        for name, low, high, known in self._plan:
            value = record.get(name)
            if value is None:
                issue = MISSING
            elif low is not None:
                kind = type(value)
                if (kind is not float and kind is not int) or low <= value <= high:
                    continue
                issue = OUT_OF_RANGE
            elif known is not None and value not in known:
                issue = UNSEEN
            else:
                continue
            found.add(issue)
            key = (name, issue)
            issues[key] = issues.get(key, 0) + 1

    def _answer(self, answer: dict[str, Any]) -> None:
        label = answer.get("label")
        if label is not None:
            key = label if type(label) is str else str(label)
            self._labels[key] = self._labels.get(key, 0) + 1
        probabilities = answer.get("probabilities")
        if type(probabilities) is dict and probabilities:
            best = max(probabilities.values())
            if isinstance(best, int | float):
                self._scores.append(best)
        else:
            score = answer.get("score")
            if isinstance(score, int | float) and 0 <= score <= 1:
                self._scores.append(score)
        if self.value is not None:
            prediction = answer.get("prediction")
            if isinstance(prediction, int | float) and math.isfinite(prediction):
                self._values.append(prediction)

    def flush(self) -> None:
        """Write what :meth:`observe` counted since the last flush to the Prometheus values."""
        if self._requests:
            self.requests.inc(self._requests)
            self._requests = 0
        labels, self._labels = self._labels, {}
        for label, count in labels.items():
            self._label(label).inc(count)
        issues, self._issues = self._issues, {}
        for (name, issue), count in issues.items():
            self.issues.labels(name, issue).inc(count)
        with_issues, self._with_issues = self._with_issues, {}
        for issue, count in with_issues.items():
            self.requests_with_issues.labels(issue).inc(count)
        scores, self._scores = self._scores, []
        for score in scores:
            self.score.observe(score)
        values, self._values = self._values, []
        if self.value is not None:
            for value in values:
                self.value.observe(value)

    def _label(self, label: str) -> Any:
        """The counter of ``label``: the model's own classes, else the first
        ``MAX_LABELS`` seen, else ``other`` (a score.py may answer anything)."""
        seen = self._seen_labels
        if (self.known_labels and label not in self.known_labels) or (
            label not in seen and len(seen) >= MAX_LABELS
        ):
            label = "other"
        seen.add(label)
        return self.predictions.labels(label)
