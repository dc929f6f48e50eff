"""What every scoring contract provides to the service, and the request shapes it accepts.

The service knows only :class:`Scorer`. A request body is parsed once, split into items
by :func:`split_payload`, checked and converted by ``prepare`` (cheap, on the event
loop), and run by ``predict`` (the model call). Batchable scorers can ``concat`` the
prepared data of several requests into one model call and hand each its slice back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shipml.errors import InvalidInput


@dataclass(slots=True)
class Prepared:
    """A validated request: ``data`` is what ``predict`` takes; ``count`` its rows."""

    data: Any
    count: int
    single: bool


class Scorer(Protocol):
    """What the service needs of a scoring contract.

    Scorers of a feature table (scikit-learn, ONNX) also have ``prepare_table(features)``,
    which takes a checked ``[N, F]`` numeric matrix or one checked array per schema
    feature: the Open Inference Protocol's tensors reach the model without becoming
    records first.
    """

    contract: str
    batchable: bool
    output_schema: dict[str, Any] | None

    def prepare(self, payload: Any, body: bytes) -> Prepared: ...

    def predict(self, data: Any) -> Any:
        """Run the model. Batchable scorers return one result per row of ``data``."""
        ...

    def concat(self, parts: list[Any]) -> Any: ...


def split_payload(payload: Any) -> tuple[list[Any], bool, bool]:
    """``(items, single, rows)`` for the three accepted shapes of a ``/predict`` body.

    - one record ``{"f": 1, …}`` → one result;
    - a list of records → a list of results;
    - ``{"inputs": [...]}`` with records, or rows in feature order → a list of results.
    """
    if isinstance(payload, dict):
        if len(payload) == 1:
            if "inputs" in payload:
                inputs = payload["inputs"]
                if isinstance(inputs, dict):
                    return [inputs], True, False
                if not isinstance(inputs, list):
                    raise InvalidInput("'inputs' must be a list of records or of rows")
                return inputs, False, bool(inputs) and isinstance(inputs[0], list)
            _refuse_other_servers_envelope(payload)
        return [payload], True, False
    if isinstance(payload, list):
        return payload, False, bool(payload) and isinstance(payload[0], list)
    raise InvalidInput(
        'the body must be a JSON object (one record), a list of records, or {"inputs": [...]}'
    )


# Other model servers' request envelopes, and what to send shipml instead. A record whose
# one field has one of these names is still a record: a field's value is never a list or
# an object.
OTHER_ENVELOPES = {
    "instances": (
        "TensorFlow Serving's, KServe v1's and Vertex AI's",
        'send {"inputs": [...]} with the same list',
    ),
    "dataframe_records": ("MLflow's", 'send {"inputs": [...]} with the same records'),
    "dataframe_split": (
        "MLflow's",
        'send {"inputs": [...]} with its "data" rows, columns in the schema\'s order',
    ),
    "input_data": (
        "Azure ML's for MLflow models",
        'send {"inputs": [...]} with its "data" rows, columns in the schema\'s order',
    ),
}


def _refuse_other_servers_envelope(payload: dict[str, Any]) -> None:
    """A clear 422 for another server's request format, instead of "missing field …"."""
    name, value = next(iter(payload.items()))
    known = OTHER_ENVELOPES.get(name)
    if known is not None and isinstance(value, list | dict):
        whose, instead = known
        raise InvalidInput(
            f'{{"{name}": ...}} is {whose} request format; {instead}, a list of records, or '
            "one record (docs/http-api.md)"
        )
