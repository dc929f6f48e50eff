"""Serving settings: one typed object, every field overridable by a ``SHIPML_*`` variable.

Precedence, highest first: command-line flags, ``SHIPML_*`` environment variables, the
project's ``serve:`` section, the defaults below. Containers are configured through the
environment alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from shipml.errors import ProjectError


@dataclass(frozen=True)
class ServeSettings:
    model: str = ""  # a model reference: name, name:N, name@alias or a file path
    store: str | None = None  # the store URL; None means the default store
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1_048_576
    timeout: int = 60  # seconds a worker may spend silent before it is restarted
    graceful_timeout: int = 20  # seconds to drain in-flight requests on SIGTERM
    keepalive: int = 5
    access_log: bool = False  # one log line per request costs ~60 µs; metrics count instead
    # Adaptive micro-batching (serving/batching.py): concurrent requests for a batchable
    # model share one model call of at most max_batch_size rows. A lone request never
    # waits; under load a batch is held at most max_latency_ms for clients about to return.
    batching: bool = True
    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    max_queue: int = 1024  # rows waiting per worker before requests get 503 overloaded
    # Each worker listens on its own SO_REUSEPORT socket so the kernel spreads
    # connections evenly; with one shared socket one worker can take them all.
    reuse_port: bool = True
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cache_dir: Path | None = None
    model_dir: Path | None = None  # a baked-in model folder (images); overrides ``model``
    # Model monitoring (docs/monitoring.md): off, nothing is sampled and nothing costs.
    # On, a share of answered requests is logged into the store by a background task of
    # each worker (never a write on the request path) and feeds the live signals.
    monitor: bool = False
    # Share of requests logged. 0.1 keeps the cost within 5 % of a fast model's throughput
    # (docs/monitoring.md measures it); 1 logs every request.
    monitor_sample_rate: float = 0.1
    monitor_interval: float = 60.0  # seconds per file and worker
    monitor_max_records: int = 100_000  # held per worker; past it records are dropped
    monitor_store: str | None = None  # default: the store the model comes from
    monitor_redact: tuple[str, ...] = ()  # fields never written
    monitor_hash: tuple[str, ...] = ()  # fields written as a (keyed) sha256

    def with_overrides(self, **values: Any) -> ServeSettings:
        """A copy with the given (non-None) values replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def load_settings(project_serve: dict[str, Any] | None = None, **flags: Any) -> ServeSettings:
    """Build settings from defaults, the project's ``serve:`` section, the environment, flags."""
    settings = ServeSettings()
    known = {f.name: f for f in fields(ServeSettings)}
    for key, value in _monitor_section(project_serve or {}).items():
        if key not in known or key in ("api_keys", "model", "store"):
            raise ProjectError(
                f"shipml.yaml: key 'serve.{key}' is not known; the keys are: "
                + ", ".join(k for k in known if k not in ("api_keys", "model", "store"))
            )
        settings = replace(settings, **{key: _convert(key, value, known[key].type)})
    for name, spec in known.items():
        raw = os.environ.get(f"SHIPML_{name.upper()}")
        if raw is not None and name != "api_keys":
            settings = replace(
                settings, **{name: _convert(f"SHIPML_{name.upper()}", raw, spec.type)}
            )
    settings = replace(settings, api_keys=read_api_keys())
    return check_settings(settings.with_overrides(**flags))


def _monitor_section(serve: dict[str, Any]) -> dict[str, Any]:
    """``serve: {monitor: {sample_rate: 0.1, redact: [email]}}`` as the flat settings
    (``monitor: true``, ``monitor_sample_rate``, ``monitor_redact``); ``monitor: true`` as is."""
    section = serve.get("monitor")
    if not isinstance(section, dict):
        return serve
    flat = {key: value for key, value in serve.items() if key != "monitor"}
    flat["monitor"] = section.get("enabled", True)
    keys = [f.name.removeprefix("monitor_") for f in fields(ServeSettings)]
    keys = [k for k in keys if f"monitor_{k}" in {f.name for f in fields(ServeSettings)}]
    for key, value in section.items():
        if key == "enabled":
            continue
        if key not in keys:
            raise ProjectError(
                f"shipml.yaml: key 'serve.monitor.{key}' is not known; the keys are: "
                + ", ".join(["enabled", *keys])
            )
        flat[f"monitor_{key}"] = value
    return flat


def check_settings(settings: ServeSettings) -> ServeSettings:
    """Refuse values that cannot work, naming the setting and its variable."""
    least_of = {
        "workers": 1,
        "max_batch_size": 1,
        "max_queue": 1,
        "max_latency_ms": 0,
        "monitor_interval": 0.1,
        "monitor_max_records": 1,
    }
    for name, least in least_of.items():
        if getattr(settings, name) < least:
            raise ProjectError(
                f"serve setting {name} (SHIPML_{name.upper()}) must be at least {least}, "
                f"got {getattr(settings, name)}"
            )
    if not 0 < settings.monitor_sample_rate <= 1:
        raise ProjectError(
            "serve setting monitor_sample_rate (SHIPML_MONITOR_SAMPLE_RATE) is the share of "
            f"requests logged, above 0 and at most 1, got {settings.monitor_sample_rate}"
        )
    return settings


def read_api_keys() -> tuple[str, ...]:
    """Keys from ``SHIPML_API_KEYS`` (comma-separated) and ``SHIPML_API_KEYS_FILE``.

    The file form suits a mounted Kubernetes or Docker secret: one key per line.
    """
    keys = [k.strip() for k in os.environ.get("SHIPML_API_KEYS", "").split(",")]
    path = os.environ.get("SHIPML_API_KEYS_FILE")
    if path:
        try:
            keys += [line.strip() for line in Path(path).read_text().splitlines()]
        except OSError as exc:
            raise ProjectError(f"SHIPML_API_KEYS_FILE={path} cannot be read: {exc}") from exc
    keys = [k for k in keys if k]
    for key in keys:
        # A template that was never filled in (the ACI YAML's placeholders, a Compose or
        # Kubernetes file copied by hand) would otherwise become a key anyone can read.
        if key.startswith("${") or key.startswith("$(") or key.startswith("<"):
            raise ProjectError(
                f"an API key is the unfilled placeholder {key[:40]!r}: fill the template "
                "(e.g. envsubst) or set SHIPML_API_KEYS to the real keys"
            )
    return tuple(keys)


def _convert(key: str, value: Any, kind: Any) -> Any:
    kind = str(kind)
    if kind.startswith("tuple"):  # names: a YAML list, or comma-separated in a variable
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in ("1", "true", "yes", "on"):
                return True
            if word in ("0", "false", "no", "off"):
                return False
            raise ValueError(word)
        if "Path" in kind:
            return Path(value)
    except (TypeError, ValueError):
        what = {"float": "a number", "bool": "true or false"}.get(kind, "a whole number")
        raise ProjectError(f"{key} must be {what}, got {value!r}") from None
    return str(value)
