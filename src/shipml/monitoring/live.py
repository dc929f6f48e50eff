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
        self.known_labels = {str(label) for label in labels or ()}
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
        self._labels: dict[str, Any] = {}
        self._issue_counters: dict[tuple[str, str], Any] = {}

    def observe(self, inputs: list[Any] | None, outputs: list[Any] | None) -> None:
        """Count one logged request."""
        self.requests.inc()
        found: set[str] = set()
        for record in inputs or ():
            if isinstance(record, dict):
                self._check(record, found)
        for issue in found:
            self.requests_with_issues.labels(issue).inc()
        for answer in outputs or ():
            if isinstance(answer, dict):
                self._answer(answer)

    def _check(self, record: dict[str, Any], found: set[str]) -> None:
        for name in self.names:
            value = record.get(name)
            if value is None:
                self._issue(name, MISSING, found)
                continue
            bounds = self.ranges.get(name)
            if bounds is not None:
                if isinstance(value, int | float) and not bounds[0] <= value <= bounds[1]:
                    self._issue(name, OUT_OF_RANGE, found)
                continue
            known = self.categories.get(name)
            if known is not None and value not in known:
                self._issue(name, UNSEEN, found)

    def _issue(self, name: str, issue: str, found: set[str]) -> None:
        found.add(issue)
        counter = self._issue_counters.get((name, issue))
        if counter is None:
            counter = self._issue_counters[name, issue] = self.issues.labels(name, issue)
        counter.inc()

    def _answer(self, answer: dict[str, Any]) -> None:
        label = answer.get("label")
        if label is not None:
            self._label(str(label)).inc()
        probabilities = answer.get("probabilities")
        if isinstance(probabilities, dict) and probabilities:
            best = max(probabilities.values())
            if isinstance(best, int | float):
                self.score.observe(best)
        else:
            score = answer.get("score")
            if isinstance(score, int | float) and 0 <= score <= 1:
                self.score.observe(score)
        prediction = answer.get("prediction")
        if (
            self.value is not None
            and isinstance(prediction, int | float)
            and math.isfinite(prediction)
        ):
            self.value.observe(prediction)

    def _label(self, label: str) -> Any:
        counter = self._labels.get(label)
        if counter is None:
            known = not self.known_labels or label in self.known_labels
            if not known or len(self._labels) >= MAX_LABELS:
                label = "other"
                counter = self._labels.get(label)
            if counter is None:
                counter = self._labels[label] = self.predictions.labels(label)
        return counter
