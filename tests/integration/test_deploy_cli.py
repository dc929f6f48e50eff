"""``shipml deploy kubernetes|aci`` and ``shipml ci``, run as a user runs them, with the real
validators and tools: kubectl (kustomize, apply), check-jsonschema, envsubst, bash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shipml.deploy.targets.aci import envsubst_command
from tests.conftest import run_shipml

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
CHECK_JSONSCHEMA = str(BIN / "check-jsonschema")
IMAGE = "myreg.azurecr.io/iris:3"
NO_ENGINE = {"DOCKER_HOST": "tcp://127.0.0.1:1"}  # nothing listens: no engine may be needed
# A dead proxy: a validator that tried to download a schema would fail, not pass.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
SECRETS = {
    "SHIPML_API_KEYS": "api-key-value-that-must-not-leak",
    "AZURE_STORAGE_CONNECTION_STRING": "AccountName=x;AccountKey=conn-value-that-must-not-leak",
    "SHIPML_REGISTRY_USERNAME": "registry-user-that-must-not-leak",
    "SHIPML_REGISTRY_PASSWORD": "registry-password-that-must-not-leak",
    "REGISTRY_PASSWORD": "ci-registry-password-that-must-not-leak",
    "KUBE_CONFIG": "kubeconfig-value-that-must-not-leak",
}


def k8s(out: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    return run_shipml(
        "deploy",
        "kubernetes",
        IMAGE,
        "--out",
        str(out),
        "--model-name",
        "iris",
        "--model-version",
        "3",
        *args,
        env={**NO_ENGINE, **(env or {})},
        check=check,
    )


def project(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    run_shipml("init", str(repo / "models" / "iris"), "--template", "iris")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def test_help_lists_the_commands() -> None:
    assert {"kubernetes", "aci"} <= set(run_shipml("deploy", "--help").stdout.split())
    assert {"github", "azure"} <= set(run_shipml("ci", "--help").stdout.split())


def test_kubectl_kustomize_renders_valid_manifests(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = k8s(
        out, "--namespace", "models", "--host", "iris.example.com", "--api-keys-secret", "keys"
    )
    assert "Wrote 6 files" in result.stdout and f"kubectl apply -k {out}" in result.stdout
    assert "kubectl create secret generic keys -n models --from-file=api-keys=" in result.stdout
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(out)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert sorted(doc["kind"] for doc in docs) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "PodDisruptionBudget",
        "Service",
    ]
    for doc in docs:
        assert doc["metadata"]["namespace"] == "models"
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_no_secret_from_the_environment_reaches_any_file_or_output(tmp_path: Path) -> None:
    outputs = []
    outputs.append(
        k8s(
            tmp_path / "k8s",
            "--api-keys-secret",
            "keys",
            "--store",
            "az://models",
            "--model",
            "iris@production",
            "--store-secret",
            "store",
            "--pull-secret",
            "regcred",
            env=SECRETS,
        )
    )
    outputs.append(
        run_shipml(
            "deploy",
            "aci",
            IMAGE,
            "--resource-group",
            "rg",
            "--name",
            "iris",
            "--out",
            str(tmp_path / "aci.yaml"),
            "--api-keys",
            "--store",
            "az://models",
            "--model",
            "iris@production",
            env={**NO_ENGINE, **SECRETS},
        )
    )
    repo = project(tmp_path)
    for vendor, target in (("github", "kubernetes"), ("azure", "aci")):
        outputs.append(
            run_shipml(
                "ci",
                vendor,
                "--registry",
                "myreg.azurecr.io",
                "--store",
                "az://models",
                "--target",
                target,
                "--resource-group",
                "rg",
                cwd=repo / "models" / "iris",
                env=SECRETS,
            )
        )
    texts = [p.read_text() for p in tmp_path.rglob("*") if p.is_file() and ".git" not in p.parts]
    texts += [o.stdout + o.stderr for o in outputs]
    assert len(texts) > 10
    leaked = [value for value in SECRETS.values() for text in texts if value in text]
    assert leaked == []


def test_refuses_a_folder_with_someone_elses_files(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    out.mkdir()
    (out / "deployment.yaml").write_text("kind: Deployment # mine\n")
    refused = k8s(out, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "holds files shipml did not generate (deployment.yaml)" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["deployment.yaml"]
    assert (out / "deployment.yaml").read_text() == "kind: Deployment # mine\n"
    (out / "deployment.yaml").unlink()
    k8s(out, "--host", "iris.example.com")
    rerun = k8s(out)  # its own files: rewritten, the Ingress no longer wanted goes
    assert "Removed files shipml no longer generates: ingress.yaml" in rerun.stdout
    assert not (out / "ingress.yaml").exists()


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    for args, message in (
        (["--replicas", "0"], "--replicas must be at least 1, got 0"),
        (["--replicas", "4", "--max-replicas", "2"], "--max-replicas 2 is below --replicas 4"),
        (["--name", "Iris_Model"], "name 'Iris_Model' is not a valid name"),
    ):
        result = k8s(tmp_path / "k8s", *args, check=False)
        assert result.returncode == 1, result.stdout
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "k8s").exists()  # nothing half-written
    without = run_shipml(
        "deploy", "kubernetes", IMAGE, "--out", str(tmp_path / "x"), env=NO_ENGINE, check=False
    )
    assert without.returncode == 1
    assert "cannot read the labels of myreg.azurecr.io/iris:3" in without.stderr
    assert "give --model-name and --model-version" in without.stderr


def test_apply_reports_kubectls_own_error(tmp_path: Path) -> None:
    """The real kubectl, against a cluster address where nothing answers."""
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "nowhere", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "nowhere",
            }
        )
    )
    out = tmp_path / "k8s"
    env = {"KUBECONFIG": str(config), "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = k8s(out, "--apply", "--context", "nowhere", env=env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "kubectl apply failed" in result.stderr
    assert "127.0.0.1:1" in result.stderr and "connection refused" in result.stderr
    assert (out / "kustomization.yaml").is_file()  # the files stay for a later apply


def test_apply_without_kubectl_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = k8s(tmp_path / "k8s", "--apply", env={"PATH": str(empty)}, check=False)
    assert result.returncode == 1
    assert "kubectl is not on PATH" in result.stderr and "kubectl apply -k" in result.stderr
    assert (tmp_path / "k8s" / "deployment.yaml").is_file()


def test_aci_apply_without_the_azure_cli_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_shipml(
        "deploy",
        "aci",
        IMAGE,
        "--resource-group",
        "rg",
        "--name",
        "iris",
        "--model-name",
        "iris",
        "--model-version",
        "3",
        "--out",
        str(tmp_path / "aci.yaml"),
        "--apply",
        env={**NO_ENGINE, "PATH": str(empty)},
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the Azure CLI (az) is not on PATH" in result.stderr


def test_aci_printed_commands_fill_a_copy_with_envsubst(tmp_path: Path) -> None:
    out = tmp_path / "aci.yaml"
    result = run_shipml(
        "deploy",
        "aci",
        IMAGE,
        "--resource-group",
        "rg",
        "--name",
        "iris",
        "--model-name",
        "iris",
        "--model-version",
        "3",
        "--api-keys",
        "--out",
        str(out),
        env=NO_ENGINE,
    )
    variables = ["SHIPML_API_KEYS", "SHIPML_REGISTRY_USERNAME", "SHIPML_REGISTRY_PASSWORD"]
    fill = envsubst_command(out, variables)
    assert fill in result.stdout
    assert "az container create --resource-group rg --file" in result.stdout
    values = {
        "SHIPML_API_KEYS": "k1,k2",
        "SHIPML_REGISTRY_USERNAME": "u",
        "SHIPML_REGISTRY_PASSWORD": "p#1: x",
    }
    filled = subprocess.run(
        ["bash", "-c", fill],
        capture_output=True,
        text=True,
        check=True,
        env={**values, "PATH": "/usr/bin:/bin"},
    ).stdout
    doc = yaml.safe_load(filled)
    credentials = doc["properties"]["imageRegistryCredentials"][0]
    assert (credentials["username"], credentials["password"]) == ("u", "p#1: x")
    assert "${" not in "".join(line for line in filled.splitlines() if not line.startswith("#"))
    assert "${SHIPML_API_KEYS}" in out.read_text()  # the written file still names only
    guard = next(
        line.strip() for line in result.stdout.splitlines() if line.strip().startswith(":")
    )
    missing = subprocess.run(
        ["bash", "-c", guard],
        check=False,
        capture_output=True,
        text=True,
        env={"SHIPML_API_KEYS": "k", "PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode != 0 and "set SHIPML_REGISTRY_USERNAME" in missing.stderr


@pytest.mark.parametrize("target", ["kubernetes", "aci", "docker"])
def test_pipelines_validate_against_their_public_schemas_offline(
    tmp_path: Path, target: str
) -> None:
    repo = project(tmp_path)
    for vendor in ("github", "azure"):
        run_shipml(
            "ci",
            vendor,
            "--registry",
            "myreg.azurecr.io",
            "--store",
            "az://models",
            "--target",
            target,
            "--resource-group",
            "rg",
            "--namespace",
            "models",
            cwd=repo / "models" / "iris",
        )
    workflow = repo / ".github" / "workflows" / "shipml.yml"
    pipeline = repo / "azure-pipelines.yml"
    for result in (check_github(workflow), check_azure(pipeline)):
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok -- validation done" in result.stdout
    assert yaml.safe_load(workflow.read_text())["on"]["schedule"] == [{"cron": "0 3 * * *"}]
    assert yaml.safe_load(pipeline.read_text())["schedules"][0]["cron"] == "0 3 * * *"


def check_github(path: Path) -> subprocess.CompletedProcess[str]:
    return check(path, "--builtin-schema", "vendor.github-workflows")


def check_azure(path: Path) -> subprocess.CompletedProcess[str]:
    # The arguments check-jsonschema's own pre-commit hook uses for this schema: Azure
    # reads every scalar as a string, and the schema's patterns are not Unicode-mode.
    return check(
        path,
        "--builtin-schema",
        "vendor.azure-pipelines",
        "--data-transform",
        "azure-pipelines",
        "--regex-variant",
        "nonunicode",
    )


def check(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK_JSONSCHEMA, *args, str(path)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        timeout=120,
    )


def test_the_schema_checks_can_fail(tmp_path: Path) -> None:
    """Negative controls: each validator rejects a broken file of its kind."""
    repo = project(tmp_path)
    for vendor in ("github", "azure"):
        run_shipml(
            "ci", vendor, "--registry", "r.io", "--store", "az://m", cwd=repo / "models" / "iris"
        )
    workflow = repo / ".github" / "workflows" / "shipml.yml"
    broken = yaml.safe_load(workflow.read_text())
    del broken["jobs"]["train-build-deploy"]["runs-on"]
    workflow.write_text(yaml.safe_dump(broken))
    failed = check_github(workflow)
    assert failed.returncode == 1 and "'runs-on' is a required property" in failed.stdout
    pipeline = repo / "azure-pipelines.yml"
    broken = yaml.safe_load(pipeline.read_text())
    broken["schedules"][0]["alwyas"] = "true"
    pipeline.write_text(yaml.safe_dump(broken))
    failed = check_azure(pipeline)
    assert failed.returncode == 1 and "('alwyas' was unexpected)" in failed.stdout
