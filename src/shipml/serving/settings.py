"""Serving settings: one typed object, every field overridable by a ``SHIPML_*`` variable.

Precedence, highest first: command-line flags, ``SHIPML_*`` environment variables, the
project's ``serve:`` section, the defaults below. Containers are configured through the
environment alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from shipml.errors import ProjectError

CORS_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$", re.IGNORECASE)


@dataclass(frozen=True)
class ServeSettings:
    model: str = ""  # a model reference: name, name:N, name@alias or a file path
    store: str | None = None  # the store URL; None means the default store
    host: str = "127.0.0.1"
    port: int = 8000
    # 0: decided at start from the CPUs the process may use (serving/sizing.py): one
    # worker per CPU, and CPUs // workers native (OpenMP/BLAS/ONNX Runtime) threads each.
    workers: int = 0
    threads: int = 0
    cpus: float = 0  # a cap on the CPUs used (0: the affinity and cgroup quota decide)
    max_body_bytes: int = 1_048_576
    timeout: int = 60  # seconds a worker may spend silent before it is restarted
    graceful_timeout: int = 20  # seconds to drain in-flight requests on SIGTERM
    # The HTTP front's limits (serving/front.py, docs/security.md): a client that sends
    # more, or more slowly, is answered 431 or 408 and disconnected.
    keepalive: float = 5  # seconds an idle keep-alive connection stays open
    max_header_bytes: int = 16_384  # request line and headers together; 431 beyond
    max_headers: int = 100  # header fields per request; 431 beyond
    header_timeout: float = 10  # seconds to receive a request's line and headers; 408
    body_timeout: float = 30  # seconds to receive a body once its headers are in; 408
    # Open connections per worker; fewer when the descriptor limit (ulimit -n) is lower.
    # Past it the longest-idle or slowest connections make room, else the new one is 503.
    max_connections: int = 1000
    # Origins a browser page may call the service from (CORS); empty: none, "*": any.
    cors_origins: tuple[str, ...] = ()
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
    least_of: dict[str, float] = {
        "workers": 0,
        "threads": 0,
        "cpus": 0,
        "max_batch_size": 1,
        "max_queue": 1,
        "max_latency_ms": 0,
        "max_header_bytes": 1024,
        "max_headers": 8,
        "header_timeout": 0.5,
        "body_timeout": 0.5,
        "keepalive": 0.5,
        "max_connections": 8,
        "graceful_timeout": 1,
        "monitor_interval": 0.1,
        "monitor_max_records": 1,
    }
    for name, least in least_of.items():
        if getattr(settings, name) < least:
            raise ProjectError(
                f"serve setting {name} (SHIPML_{name.upper()}) must be at least {least}, "
                f"got {getattr(settings, name)}"
            )
    # A browser sends an origin without a trailing slash; people often write one.
    origins = tuple(origin.rstrip("/") for origin in settings.cors_origins)
    settings = replace(settings, cors_origins=origins)
    for origin in settings.cors_origins:
        if origin != "*" and not CORS_ORIGIN.match(origin):
            raise ProjectError(
                f"serve setting cors_origins (SHIPML_CORS_ORIGINS): {origin!r} is not an "
                "origin; write scheme://host[:port] with no path, e.g. https://app.example.com, "
                "or * for any origin"
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
        if "tuple" in kind:  # a list in shipml.yaml, comma-separated in a variable
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
    except (TypeError, ValueError):
        what = {"float": "a number", "bool": "true or false"}.get(kind, "a whole number")
        raise ProjectError(f"{key} must be {what}, got {value!r}") from None
    return str(value)
