"""``shipml models list``: every version of a store's models, readable or not.

A damaged alias file or manifest is reported, not fatal: the listing goes on, so one bad
version never hides the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipml.errors import ShipmlError
from shipml.store.store import Store


@dataclass(frozen=True)
class Row:
    ref: str
    created: str = ""
    aliases: str = ""
    digest: str = ""  # the start of the manifest digest, enough to tell versions apart
    metrics: str = ""
    readable: bool = True


def list_versions(store: Store, name: str | None = None) -> tuple[list[Row], list[str]]:
    """One row per version (of ``name``, or of every model), and the problems met."""
    rows: list[Row] = []
    problems: list[str] = []
    for model in [name] if name else store.models():
        try:
            aliases = store.aliases(model)
        except ShipmlError as exc:  # one damaged alias does not hide the versions
            aliases, problems = {}, [*problems, exc.message]
        for version in store.versions(model):
            try:
                manifest, digest = store.manifest(model, version)
            except ShipmlError as exc:
                rows.append(Row(f"{model}:{version}", readable=False))
                problems.append(exc.message)
                continue
            names = sorted(a for a, v in aliases.items() if v == version)
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in manifest.metrics.items())
            rows.append(
                Row(manifest.ref, manifest.created, ", ".join(names), digest[7:19], metrics)
            )
    return rows, problems
