"""What the served model accepts beyond its input schema, found out once at load.

The input schema says what the service checks: a field's type, whether it may be null.
Some models are stricter: a one-hot encoder fitted with ``handle_unknown="error"`` refuses
any string it did not see in training (the service answers 422, "the model refused this
input"), while another model takes any string. The OpenAPI document must say which, or
it describes requests as valid that are not, or as invalid that are. So at load, for
each text field whose training values are known (a category's categories, a text
column's ``x-values``), the model is asked once with the example record carrying a string
it cannot have seen; a model that refuses it takes only the values it was trained on.
"""

from __future__ import annotations

import logging
from typing import Any

from shipml.scoring import Scorer

log = logging.getLogger("shipml")
UNSEEN = "shipml-probe-\u2063-never-seen"


def closed_fields(scorer: Scorer, example: Any, schema: dict[str, Any] | None) -> frozenset[str]:
    """The text fields for which the model refuses a value it was not trained on."""
    if not isinstance(example, dict) or not schema or not scorer.batchable:
        return frozenset()
    closed = set()
    for name, prop in (schema.get("properties") or {}).items():
        kinds = prop.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        known = prop.get("enum") or prop.get("x-values")
        if "string" not in kinds or not known or prop.get("format") or name not in example:
            continue
        probe = {**example, name: UNSEEN}
        try:
            scorer.predict(scorer.prepare(probe, b"").data)
        except Exception:  # refused (422), or worse: either way only known values work
            closed.add(name)
    if closed:
        log.info("the model takes only the values it was trained on for: %s", ", ".join(closed))
    return frozenset(closed)
