"""``shipml deploy kubernetes``: a folder of manifests for one serve image, and ``kubectl``.

What is written, and why:

- a Deployment whose pods are safe by default: non-root (the image's uid 10001), a
  read-only root filesystem with an ``emptyDir`` on ``/tmp`` (the server writes its
  Prometheus files and worker heartbeats there, and a store-fetched model is cached
  there), no privilege escalation, no capabilities, no service-account token;
- probes on the service's own routes: a startup probe on ``/health/ready`` that gives
  the model time to load, then readiness on ``/health/ready`` and liveness on
  ``/health/live`` (which answers at once, so a slow load never gets a pod killed);
- rolling updates that never drop below the wanted count (``maxUnavailable: 0``) and a
  shutdown that loses no request: a ``preStop`` pause lets the endpoints controller take
  the pod out of the Service before SIGTERM, then the server drains for its
  ``graceful_timeout``; ``terminationGracePeriodSeconds`` covers both with a margin;
- a Service, a HorizontalPodAutoscaler on CPU (the Deployment leaves ``replicas`` to
  it, so a re-apply never resets a scaled-out count), a PodDisruptionBudget, an optional
  Ingress, and a ``kustomization.yaml`` listing them (``kubectl apply -k DIR``);
- for Prometheus, scrape annotations on every pod and, on request, a ServiceMonitor for
  the Prometheus Operator; on request, payload logging (``SHIPML_MONITOR``) into a store.

Secrets (API keys, store credentials, registry pull credentials) are referenced by the
name of a Kubernetes Secret the user creates; no value is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipml.deploy import validation as rules
from shipml.deploy.generated import dump_yaml, header, write_folder
from shipml.deploy.image_facts import ImageFacts
from shipml.deploy.kubectl import API_KEYS_ITEM, apply, apply_command, secret_commands
from shipml.deploy.probes import LIVENESS_TIMEOUT, READINESS_TIMEOUT, STARTUP_TIMEOUT
from shipml.deploy.validation import ManifestError
from shipml.serving.settings import ServeSettings
from shipml.store import parse_reference

__all__ = [
    "Options",
    "Resolved",
    "apply",
    "apply_command",
    "check",
    "grace_period",
    "render",
    "secret_commands",
    "write",
]
PRE_STOP_SECONDS = 5  # long enough for kube-proxy and ingresses to drop the endpoint
GRACE_MARGIN_SECONDS = 5
SECRETS_DIR = "/var/run/secrets/shipml"
UID = 10001


@dataclass(frozen=True)
class Options:
    name: str | None = None  # default: made from the model name
    namespace: str | None = None
    replicas: int = 2  # the autoscaler's minimum, or the fixed count without one
    max_replicas: int | None = None  # default: max(5, replicas)
    autoscale: bool = True
    cpu_target: int = 70  # average CPU utilisation (% of the request) the HPA aims at
    cpu: str = "500m"
    memory: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    tmp_size: str = "512Mi"
    workers: int | None = None
    graceful_timeout: int = ServeSettings.graceful_timeout
    host: str | None = None  # an Ingress for this host when given
    ingress_class: str | None = None
    tls_secret: str | None = None
    api_keys_secret: str | None = None  # Secret with key "api-keys": one key per line
    store: str | None = None  # serve a model fetched from this store instead of the baked one
    model: str | None = None
    store_secret: str | None = None  # Secret whose keys become environment variables
    pull_secret: str | None = None
    service_monitor: bool = False  # a Prometheus Operator ServiceMonitor for /metrics
    scrape_interval: str = "30s"
    monitor: bool = False  # payload logging (docs/monitoring.md)
    monitor_store: str | None = None  # where it writes (default: --store)


@dataclass(frozen=True)
class Resolved:
    """The manifests to write: the options checked, with the defaults they leave open."""

    name: str
    max_replicas: int
    options: Options


def check(options: Options, facts: ImageFacts) -> Resolved:
    """What ``options`` ask for, for the image of ``facts``; raises on the first wrong one."""
    name = options.name or rules.derived_name(facts.model_name)
    rules.dns_label(name, "name" if options.name else "the name made from the model name")
    if options.namespace:
        rules.dns_label(options.namespace, "namespace", start_with_letter=False)
    rules.at_least(options.replicas, 1, "--replicas")
    maximum = options.max_replicas if options.max_replicas is not None else max(5, options.replicas)
    if maximum < options.replicas:
        raise ManifestError(
            f"--max-replicas {maximum} is below --replicas {options.replicas}: the autoscaler "
            "needs min <= max"
        )
    if not 1 <= options.cpu_target <= 100:
        raise ManifestError(f"--cpu-target is a percentage from 1 to 100, got {options.cpu_target}")
    rules.request_within_limit(options.cpu, options.cpu_limit, "CPU")
    rules.request_within_limit(options.memory, options.memory_limit, "memory")
    rules.quantity(options.tmp_size, "--tmp-size")
    if options.workers is not None:
        rules.at_least(options.workers, 1, "--workers")
    rules.at_least(options.graceful_timeout, 1, "--graceful-timeout")
    if options.host:
        rules.dns_subdomain(options.host, "--host", "iris.example.com")
    elif options.tls_secret or options.ingress_class:
        raise ManifestError("--tls-secret and --ingress-class need --host (the Ingress host)")
    for flag, value in (
        ("--tls-secret", options.tls_secret),
        ("--api-keys-secret", options.api_keys_secret),
        ("--store-secret", options.store_secret),
        ("--pull-secret", options.pull_secret),
        ("--ingress-class", options.ingress_class),
    ):
        if value:
            rules.dns_subdomain(value, flag)
    if bool(options.store) != bool(options.model):
        raise ManifestError("--store and --model go together: the model to fetch and where")
    if options.store_secret and not (options.store or options.monitor_store):
        raise ManifestError(
            "--store-secret holds store credentials: it needs --store or --monitor-store"
        )
    if options.monitor and not (options.store or options.monitor_store):
        raise ManifestError(
            "--monitor logs requests into a store: give --monitor-store az://… (with "
            "--store-secret for its credentials), or serve from --store"
        )
    if options.monitor_store and not options.monitor:
        raise ManifestError("--monitor-store is where --monitor writes: add --monitor")
    if options.service_monitor:
        rules.duration(options.scrape_interval, "--scrape-interval")
    if options.model:
        parse_reference(options.model)
    return Resolved(name=name, max_replicas=maximum, options=options)


def render(facts: ImageFacts, options: Options, command: list[str]) -> dict[str, str]:
    """The manifests for ``facts.image``: file name → YAML text."""
    deploy = check(options, facts)
    name = deploy.name
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/version": _label_value(facts.model_version),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "shipml",
    }
    documents: dict[str, dict[str, Any]] = {
        "deployment.yaml": _deployment(facts, deploy, labels, selector),
        "service.yaml": _resource("v1", "Service", name, labels)
        | {
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            }
        },
        "poddisruptionbudget.yaml": _resource("policy/v1", "PodDisruptionBudget", name, labels)
        | {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}},
    }
    if options.autoscale:
        documents["horizontalpodautoscaler.yaml"] = _autoscaler(deploy, labels)
    if options.host:
        documents["ingress.yaml"] = _ingress(name, options.host, options, labels)
    if options.service_monitor:
        documents["servicemonitor.yaml"] = _resource(
            "monitoring.coreos.com/v1", "ServiceMonitor", name, labels
        ) | {
            "spec": {
                "selector": {"matchLabels": selector},
                "endpoints": [
                    {"port": "http", "path": "/metrics", "interval": options.scrape_interval}
                ],
            }
        }
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
    }
    if options.namespace:
        kustomization["namespace"] = options.namespace
    kustomization["resources"] = list(documents)
    top = header(
        command,
        "Secrets are referenced by name, never written here: see docs/deploy.md#kubernetes.",
    )
    files = {file: top + dump_yaml(document) for file, document in documents.items()}
    files["kustomization.yaml"] = top + dump_yaml(kustomization)
    return files


def _label_value(text: str) -> str:
    """A label value (63 chars of [A-Za-z0-9._-]); an alias such as 'production' fits."""
    value = "".join(c if c.isalnum() or c in "._-" else "-" for c in text)[:63]
    return value.strip("._-") or "unknown"


def _resource(api: str, kind: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "labels": labels}}


def _deployment(
    facts: ImageFacts,
    deploy: Resolved,
    labels: dict[str, str],
    selector: dict[str, str],
) -> dict[str, Any]:
    options = deploy.options
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(facts.port),
        "prometheus.io/path": "/metrics",
        "shipml.io/model": options.model or facts.model_ref,
    }
    if facts.digest and not options.model:
        annotations["shipml.io/model-digest"] = facts.digest
    spec: dict[str, Any] = {} if options.autoscale else {"replicas": options.replicas}
    spec |= {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": _pod(facts, options),
        },
    }
    deployment = _resource("apps/v1", "Deployment", deploy.name, labels)
    deployment["metadata"]["annotations"] = {"shipml.io/image": facts.image}
    return deployment | {"spec": spec}


def _environment(facts: ImageFacts, options: Options) -> list[dict[str, str]]:
    env = [
        {"name": "SHIPML_HOST", "value": "0.0.0.0"},
        {"name": "SHIPML_PORT", "value": str(facts.port)},
        {"name": "SHIPML_GRACEFUL_TIMEOUT", "value": str(options.graceful_timeout)},
        # The CPU limit sizes the workers and their native threads (serving/sizing.py):
        # the container's cgroup quota says the same, unless the kubelet runs without
        # CFS quotas (--cpu-cfs-quota=false), where only this keeps them from the node's count.
        {"name": "SHIPML_CPUS", "value": f"{rules.quantity(options.cpu_limit, 'CPU limit'):g}"},
    ]
    if options.workers is not None:
        env.append({"name": "SHIPML_WORKERS", "value": str(options.workers)})
    if options.monitor:
        env.append({"name": "SHIPML_MONITOR", "value": "true"})
        if options.monitor_store:
            env.append({"name": "SHIPML_MONITOR_STORE", "value": options.monitor_store})
    if options.store and options.model:
        env += [
            {"name": "SHIPML_STORE", "value": options.store},
            {"name": "SHIPML_MODEL", "value": options.model},
        ]
    if options.api_keys_secret:
        env.append({"name": "SHIPML_API_KEYS_FILE", "value": f"{SECRETS_DIR}/{API_KEYS_ITEM}"})
    return env


def _pod(facts: ImageFacts, options: Options) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": options.tmp_size}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if options.api_keys_secret:
        volumes.append(
            {
                "name": "api-keys",
                "secret": {
                    "secretName": options.api_keys_secret,
                    "items": [{"key": API_KEYS_ITEM, "path": API_KEYS_ITEM}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "api-keys", "mountPath": SECRETS_DIR, "readOnly": True})
    container: dict[str, Any] = {
        "name": "model",
        "image": facts.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": facts.port, "protocol": "TCP"}],
        "env": _environment(facts, options),
    }
    if options.store_secret:
        container["envFrom"] = [{"secretRef": {"name": options.store_secret}}]
    container |= _running(options) | {"volumeMounts": mounts}
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": grace_period(options.graceful_timeout),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if options.pull_secret:
        pod["imagePullSecrets"] = [{"name": options.pull_secret}]
    return pod


def _running(options: Options) -> dict[str, Any]:
    """The container's resources, probes, shutdown pause and security context."""
    http = {"port": "http"}
    return {
        "resources": {
            "requests": {"cpu": options.cpu, "memory": options.memory},
            "limits": {"cpu": options.cpu_limit, "memory": options.memory_limit},
        },
        # Model loading can take a while (a store download, a big model): up to 3 minutes.
        "startupProbe": {
            "httpGet": {"path": "/health/ready", **http},
            "periodSeconds": 2,
            "timeoutSeconds": STARTUP_TIMEOUT,
            "failureThreshold": 90,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", **http},
            "periodSeconds": 5,
            "timeoutSeconds": READINESS_TIMEOUT,
            "failureThreshold": 2,
        },
        # timeouts: what the service guarantees, with a margin (deploy/probes.py)
        "livenessProbe": {
            "httpGet": {"path": "/health/live", **http},
            "periodSeconds": 10,
            "timeoutSeconds": LIVENESS_TIMEOUT,
            "failureThreshold": 3,
        },
        # Python is in every shipml image; a shell 'sleep' need not be.
        "lifecycle": {
            "preStop": {
                "exec": {
                    "command": ["python3", "-c", f"import time; time.sleep({PRE_STOP_SECONDS})"]
                }
            }
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def grace_period(graceful_timeout: int) -> int:
    """Seconds Kubernetes waits before SIGKILL: the preStop pause, the drain, a margin."""
    return PRE_STOP_SECONDS + graceful_timeout + GRACE_MARGIN_SECONDS


def _autoscaler(deploy: Resolved, labels: dict[str, str]) -> dict[str, Any]:
    options = deploy.options
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy.name}
    metric = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": options.cpu_target},
        },
    }
    return _resource("autoscaling/v2", "HorizontalPodAutoscaler", deploy.name, labels) | {
        "spec": {
            "scaleTargetRef": target,
            "minReplicas": options.replicas,
            "maxReplicas": deploy.max_replicas,
            "metrics": [metric],
        }
    }


def _ingress(name: str, host: str, options: Options, labels: dict[str, str]) -> dict[str, Any]:
    backend = {"service": {"name": name, "port": {"name": "http"}}}
    spec: dict[str, Any] = {}
    if options.ingress_class:
        spec["ingressClassName"] = options.ingress_class
    if options.tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": options.tls_secret}]
    spec["rules"] = [
        {
            "host": host,
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
        }
    ]
    return _resource("networking.k8s.io/v1", "Ingress", name, labels) | {"spec": spec}


def write(
    facts: ImageFacts, options: Options, out: Path, command: list[str]
) -> tuple[list[str], list[str]]:
    """Render and write the manifests into ``out``; returns (written, stale removed)."""
    files = render(facts, options, command)
    removed = write_folder(out, files)
    return sorted(files), removed
