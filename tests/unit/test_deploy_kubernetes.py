"""Kubernetes manifests: valid against the official schemas, safe pods, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shipml.deploy.generated import MARK, write_folder
from shipml.deploy.image_facts import ImageFacts, image_facts
from shipml.deploy.kubectl import apply_command, secret_commands
from shipml.deploy.targets.kubernetes import Options as KubernetesOptions
from shipml.deploy.targets.kubernetes import grace_period, render
from shipml.deploy.validation import ManifestError
from shipml.errors import ShipmlError

# kubernetes-validate ships schemas for 1.25 to 1.37 here (see its kubernetes-json-schema
# folder); we check the oldest and a middle one: every API we use is GA in both.
KUBERNETES_VERSIONS = ("1.25.0", "1.30.0")
FACTS = ImageFacts("myreg.azurecr.io/iris:3", "iris", "3", 8000, "sha256:" + "a" * 64)
COMMAND = ["shipml", "deploy", "kubernetes", FACTS.image, "--out", "k8s"]
FULL = KubernetesOptions(
    namespace="models",
    host="iris.example.com",
    ingress_class="nginx",
    tls_secret="iris-tls",
    api_keys_secret="iris-api-keys",
    store="az://models",
    model="iris@production",
    store_secret="iris-store",
    pull_secret="regcred",
    workers=2,
)


def documents(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(text) for name, text in files.items()}


def container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize("options", [KubernetesOptions(), FULL], ids=["defaults", "everything"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_strictly_against_the_official_schemas(
    options: KubernetesOptions, version: str
) -> None:
    docs = documents(render(FACTS, options, COMMAND))
    kinds = set()
    for name, doc in docs.items():
        if name == "kustomization.yaml":
            continue
        # Raises on any error, and SchemaNotFoundError on an unknown kind/apiVersion.
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    assert kinds == expected | ({"Ingress"} if options.host else set())
    assert "Secret" not in kinds


def test_the_validator_catches_a_mistake() -> None:
    """Negative control: the check above can fail."""
    deployment = documents(render(FACTS, KubernetesOptions(), COMMAND))["deployment.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30.0", strict=True)


def test_probes_use_the_health_routes_on_the_named_port() -> None:
    spec = container(documents(render(FACTS, KubernetesOptions(), COMMAND)))
    assert spec["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert spec["startupProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    startup = spec["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120  # time to load


def test_pods_are_non_root_read_only_and_drop_everything() -> None:
    docs = documents(render(FACTS, KubernetesOptions(), COMMAND))
    pod = docs["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container(docs)["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # The server writes to /tmp (worker heartbeats, Prometheus files): an emptyDir.
    assert {"name": "tmp", "mountPath": "/tmp"} in container(docs)["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}} in pod["volumes"]


def test_rolling_update_and_shutdown_lose_no_request() -> None:
    options = KubernetesOptions(graceful_timeout=45)
    docs = documents(render(FACTS, options, COMMAND))
    spec = docs["deployment.yaml"]["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    command = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    sleep = float(command[-1].rsplit("(", 1)[1].rstrip(")"))
    assert {"name": "SHIPML_GRACEFUL_TIMEOUT", "value": "45"} in container(docs)["env"]
    assert pod["terminationGracePeriodSeconds"] > sleep + 45
    assert pod["terminationGracePeriodSeconds"] == grace_period(45)


def test_autoscaler_owns_the_replica_count() -> None:
    docs = documents(render(FACTS, KubernetesOptions(replicas=3, max_replicas=7), COMMAND))
    assert "replicas" not in docs["deployment.yaml"]["spec"]
    hpa = docs["horizontalpodautoscaler.yaml"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 7)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"}
    fixed = documents(render(FACTS, KubernetesOptions(replicas=3, autoscale=False), COMMAND))
    assert fixed["deployment.yaml"]["spec"]["replicas"] == 3
    assert "horizontalpodautoscaler.yaml" not in fixed
    assert docs["poddisruptionbudget.yaml"]["spec"]["maxUnavailable"] == 1


def test_secrets_are_referenced_by_name_only() -> None:
    docs = documents(render(FACTS, FULL, COMMAND))
    spec = container(docs)
    pod = docs["deployment.yaml"]["spec"]["template"]["spec"]
    assert spec["envFrom"] == [{"secretRef": {"name": "iris-store"}}]
    env = {item["name"]: item["value"] for item in spec["env"]}
    assert env["SHIPML_API_KEYS_FILE"] == "/var/run/secrets/shipml/api-keys"
    assert env["SHIPML_STORE"] == "az://models" and env["SHIPML_MODEL"] == "iris@production"
    assert "SHIPML_API_KEYS" not in env and "AZURE_STORAGE_CONNECTION_STRING" not in env
    keys = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert keys["secret"]["secretName"] == "iris-api-keys"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert docs["ingress.yaml"]["spec"]["tls"] == [
        {"hosts": ["iris.example.com"], "secretName": "iris-tls"}
    ]
    lines = secret_commands(FACTS, FULL)
    assert any("--from-file=api-keys=" in line for line in lines)
    assert any(
        'AZURE_STORAGE_CONNECTION_STRING="$AZURE_STORAGE_CONNECTION_STRING"' in line
        for line in lines
    )
    assert any("--docker-server=myreg.azurecr.io" in line for line in lines)


def test_kustomization_lists_every_file_and_sets_the_namespace() -> None:
    files = render(FACTS, FULL, COMMAND)
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["namespace"] == "models"
    assert sorted(kustomization["resources"]) == sorted(set(files) - {"kustomization.yaml"})
    assert all(text.startswith(MARK) for text in files.values())


def test_labels_and_annotations_name_the_model() -> None:
    docs = documents(render(FACTS, KubernetesOptions(), COMMAND))
    template = docs["deployment.yaml"]["spec"]["template"]["metadata"]
    assert template["labels"]["app.kubernetes.io/version"] == "3"
    assert template["annotations"]["shipml.io/model"] == "iris:3"
    assert template["annotations"]["shipml.io/model-digest"] == FACTS.digest
    assert docs["deployment.yaml"]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "iris",
        "app.kubernetes.io/instance": "iris",
    }


def test_name_is_derived_from_a_model_name_kubernetes_would_refuse() -> None:
    facts = ImageFacts("reg.io/x:1", "My_Model.v2", "1", 8000)
    docs = documents(render(facts, KubernetesOptions(), COMMAND))
    assert docs["service.yaml"]["metadata"]["name"] == "my-model-v2"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (KubernetesOptions(name="Iris_Model"), "name 'Iris_Model' is not a valid name"),
        (KubernetesOptions(name="9iris"), "starting with a lowercase letter"),
        (KubernetesOptions(name="x" * 64), "at most 63"),
        (KubernetesOptions(namespace="Prod"), "namespace 'Prod'"),
        (KubernetesOptions(replicas=0), "--replicas must be at least 1, got 0"),
        (KubernetesOptions(replicas=4, max_replicas=2), "--max-replicas 2 is below --replicas 4"),
        (KubernetesOptions(cpu_target=0), "--cpu-target"),
        (KubernetesOptions(cpu="2", cpu_limit="1"), "the CPU request 2 is more than its limit 1"),
        (KubernetesOptions(memory="2Gi", memory_limit="1Gi"), "memory request 2Gi"),
        (KubernetesOptions(memory="lots"), "'lots' is not a Kubernetes quantity"),
        (KubernetesOptions(workers=0), "--workers must be at least 1"),
        (KubernetesOptions(graceful_timeout=0), "--graceful-timeout must be at least 1"),
        (KubernetesOptions(host="Not A Host"), "--host 'Not A Host' is not a valid name"),
        (KubernetesOptions(tls_secret="t"), "need --host"),
        (KubernetesOptions(api_keys_secret="Keys!"), "--api-keys-secret 'Keys!'"),
        (KubernetesOptions(store="az://models"), "--store and --model go together"),
        (KubernetesOptions(store_secret="s"), "--store-secret holds store credentials"),
        (
            KubernetesOptions(store="az://m", model="iris:zero"),
            "invalid version in 'iris:zero'",
        ),
    ],
)
def test_bad_options_fail_with_a_clear_message(options: KubernetesOptions, message: str) -> None:
    with pytest.raises(ShipmlError) as caught:
        render(FACTS, options, COMMAND)
    assert message in str(caught.value)


def test_a_name_kubernetes_would_refuse_is_never_derived_silently() -> None:
    facts = ImageFacts("reg.io/x:1", "123", "1", 8000)
    with pytest.raises(ManifestError, match="the name made from the model name '123'"):
        render(facts, KubernetesOptions(), COMMAND)


def test_facts_from_flags_need_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens there
    facts = image_facts("reg.io/iris:3", model_name="iris", model_version="3")
    assert (facts.model_name, facts.model_version, facts.port) == ("iris", "3", 8000)
    fetched = image_facts("reg.io/iris:3", serve_model="iris@production")
    assert fetched.model_ref == "iris@production"
    with pytest.raises(ManifestError, match="give --model-name and --model-version"):
        image_facts("reg.io/iris:3")


def test_rewrites_own_files_and_refuses_foreign_ones(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    files = render(FACTS, FULL, COMMAND)
    assert write_folder(out, files) == []
    fewer = render(FACTS, KubernetesOptions(), COMMAND)
    assert write_folder(out, fewer) == ["ingress.yaml"]  # ours, no longer wanted
    (out / "notes.md").write_text("mine")
    before = {p.name: p.read_text() for p in out.iterdir()}
    with pytest.raises(ManifestError, match=r"did not generate \(notes.md\)"):
        write_folder(out, files)
    assert {p.name: p.read_text() for p in out.iterdir()} == before  # nothing touched


def test_apply_command_uses_kustomize_and_the_context() -> None:
    assert apply_command(Path("k8s")) == ["kubectl", "apply", "-k", "k8s"]
    assert apply_command(Path("k8s"), "prod") == [
        "kubectl",
        "--context",
        "prod",
        "apply",
        "-k",
        "k8s",
    ]


def test_probe_timeouts_leave_a_margin_over_what_the_service_guarantees() -> None:
    """/health/* answer within ~0.5 s even under eight 100,000-row clients
    (tests/integration/test_workers.py); the probes wait several times that."""
    spec = container(documents(render(FACTS, KubernetesOptions(), COMMAND)))
    assert spec["livenessProbe"]["timeoutSeconds"] >= 5
    assert spec["readinessProbe"]["timeoutSeconds"] >= 3
    assert spec["livenessProbe"]["failureThreshold"] * spec["livenessProbe"]["periodSeconds"] >= 30


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_monitoring_adds_a_service_monitor_and_payload_logging(version: str) -> None:
    options = KubernetesOptions(
        service_monitor=True,
        scrape_interval="15s",
        monitor=True,
        monitor_store="az://monitoring",
        store_secret="iris-store",
    )
    docs = documents(render(FACTS, options, COMMAND))
    for name, doc in docs.items():
        if name not in ("kustomization.yaml", "servicemonitor.yaml"):
            kubernetes_validate.validate(doc, version, strict=True)
    monitor = docs["servicemonitor.yaml"]
    assert (
        monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    )
    service = docs["service.yaml"]
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "15s"}
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert "servicemonitor.yaml" in docs["kustomization.yaml"]["resources"]
    env = {e["name"]: e.get("value") for e in container(docs)["env"]}
    assert env["SHIPML_MONITOR"] == "true" and env["SHIPML_MONITOR_STORE"] == "az://monitoring"
    assert container(docs)["envFrom"] == [{"secretRef": {"name": "iris-store"}}]
    annotations = docs["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert "--from-literal=AZURE_STORAGE_CONNECTION_STRING" in " ".join(
        secret_commands(FACTS, options)
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (KubernetesOptions(monitor=True), "--monitor-store"),
        (KubernetesOptions(monitor_store="az://m"), "add --monitor"),
        (KubernetesOptions(service_monitor=True, scrape_interval="soon"), "--scrape-interval"),
    ],
)
def test_monitoring_options_that_cannot_work_are_refused(
    options: KubernetesOptions, words: str
) -> None:
    with pytest.raises(ManifestError, match=words):
        render(FACTS, options, COMMAND)


@pytest.mark.parametrize(("limit", "cpus"), [("1", "1"), ("500m", "0.5"), ("2500m", "2.5")])
def test_the_cpu_limit_sizes_workers_and_threads(limit: str, cpus: str) -> None:
    """The limit reaches the service as SHIPML_CPUS (serving/sizing.py: workers x threads
    within it), beside the cgroup quota the same limit sets."""
    docs = documents(render(FACTS, KubernetesOptions(cpu_limit=limit), COMMAND))
    env = container(docs)["env"]
    assert {"name": "SHIPML_CPUS", "value": cpus} in env
    assert not any(item["name"] == "SHIPML_WORKERS" for item in env)  # decided in the pod
    assert container(docs)["resources"]["limits"]["cpu"] == limit
