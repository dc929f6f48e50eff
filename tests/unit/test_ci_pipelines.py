"""CI pipelines: the steps, the schedule, secrets only by name, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipml.deploy.ci import CiOptions, render_azure, render_github, write
from shipml.deploy.validation import ManifestError
from shipml.project import Project, load_project
from shipml.templates import create_project

COMMAND = ["shipml", "ci"]
OPTIONS = CiOptions(registry="myreg.azurecr.io", store="az://models")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    create_project(tmp_path / "repo" / "models" / "iris", "iris")
    return load_project(tmp_path / "repo" / "models" / "iris")


def scripts(workflow: dict[str, Any]) -> str:
    steps = workflow["jobs"]["train-build-deploy"]["steps"]
    return "\n".join(step.get("run", "") for step in steps)


def test_github_workflow_runs_on_push_nightly_and_on_demand(project: Project) -> None:
    workflow = yaml.safe_load(render_github(project, "models/iris", OPTIONS, COMMAND))
    triggers = workflow["on"]
    assert triggers["push"] == {"branches": ["main"]}
    assert triggers["schedule"] == [{"cron": "0 3 * * *"}]
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"] == {
        "REGISTRY": "myreg.azurecr.io",
        "IMAGE_NAME": "iris",
        "SHIPML_STORE": "az://models",
    }


def test_github_steps_train_register_build_push_deploy_with_shipml(project: Project) -> None:
    workflow = yaml.safe_load(render_github(project, "models/iris", OPTIONS, COMMAND))
    steps = workflow["jobs"]["train-build-deploy"]["steps"]
    names = [step.get("name") for step in steps if "name" in step]
    assert names == [
        "Install shipml",
        "Log in to the registry",
        "Build the train image",
        "Train and register a model version",
        "Build, smoke-test and push the serve image",
        "Deploy to Kubernetes",
    ]
    text = scripts(workflow)
    assert "shipml build --target train" in text
    assert "docker run --rm -e SHIPML_STORE -e AZURE_STORAGE_CONNECTION_STRING" in text
    assert 'shipml build "$MODEL_REF" --tag "$SERVE_IMAGE" --push' in text
    assert 'shipml deploy kubernetes "$SERVE_IMAGE"' in text and "--apply" in text
    assert all(step["run"].startswith("set -euo pipefail\n") for step in steps if "run" in step)
    build = next(step for step in steps if step.get("name") == "Build the train image")
    assert build["working-directory"] == "models/iris"


def test_the_train_log_parsing_finds_the_registered_reference(
    project: Project, tmp_path: Path
) -> None:
    """The step's own shell lines, run on the train image's real output line."""
    workflow = yaml.safe_load(render_github(project, ".", OPTIONS, COMMAND))
    step = next(
        s
        for s in workflow["jobs"]["train-build-deploy"]["steps"]
        if s.get("name", "").startswith("Train")
    )
    lines = step["run"].splitlines()
    parse = "\n".join(line for line in lines if not line.startswith("docker run"))
    (tmp_path / "train.log").write_text(
        "Training iris into az://models\nRegistered iris:12 (sha256:" + "b" * 64 + ")\n"
    )
    env_file = tmp_path / "env"
    subprocess.run(
        ["bash", "-c", parse],
        check=True,
        env={
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_ENV": str(env_file),
            "REGISTRY": "myreg.azurecr.io",
            "IMAGE_NAME": "iris",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert env_file.read_text() == "MODEL_REF=iris:12\nSERVE_IMAGE=myreg.azurecr.io/iris:12\n"
    (tmp_path / "train.log").write_text("error: the store cannot be reached\n")
    failed = subprocess.run(
        ["bash", "-c", parse],
        check=False,
        capture_output=True,
        text=True,
        env={"RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(env_file), "PATH": "/usr/bin:/bin"},
    )
    assert failed.returncode == 1 and "training registered no model" in failed.stderr


def test_secrets_come_from_the_ci_system_by_name(project: Project) -> None:
    text = render_github(project, ".", OPTIONS, COMMAND)
    workflow = yaml.safe_load(text)
    envs = [s.get("env", {}) for s in workflow["jobs"]["train-build-deploy"]["steps"]]
    values = {value for env in envs for value in env.values()}
    assert values == {
        "${{ secrets.REGISTRY_USERNAME }}",
        "${{ secrets.REGISTRY_PASSWORD }}",
        "${{ secrets.AZURE_STORAGE_CONNECTION_STRING }}",
        "${{ secrets.KUBE_CONFIG }}",
    }
    for name in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "KUBE_CONFIG"):
        assert f"#   {name}" in text  # listed in the header for the user to create


def test_azure_pipeline_schedule_trigger_and_variable_group(project: Project) -> None:
    options = CiOptions(
        registry="myreg.azurecr.io",
        store="az://models",
        target="aci",
        resource_group="ml-rg",
        variable_group="ml-secrets",
        service_connection="ml-azure",
        branch="release",
        schedule="30 1 * * 1-5",
    )
    pipeline = yaml.safe_load(render_azure(project, "models/iris", options, COMMAND))
    assert pipeline["trigger"] == {"branches": {"include": ["release"]}}
    assert pipeline["schedules"] == [
        {
            "cron": "30 1 * * 1-5",
            "displayName": "nightly training",
            "branches": {"include": ["release"]},
            "always": "true",
        }
    ]
    assert pipeline["variables"][0] == {"group": "ml-secrets"}
    steps = pipeline["jobs"][0]["steps"]
    deploy = steps[-1]
    assert deploy["task"] == "AzureCLI@2"
    assert deploy["inputs"]["azureSubscription"] == "ml-azure"
    assert "shipml deploy aci" in deploy["inputs"]["inlineScript"]
    assert "--resource-group ml-rg --name iris" in deploy["inputs"]["inlineScript"]
    assert deploy["env"]["SHIPML_REGISTRY_PASSWORD"] == "$(REGISTRY_PASSWORD)"
    train = next(s for s in steps if s.get("displayName", "").startswith("Train"))
    assert "##vso[task.setvariable variable=SERVE_IMAGE]" in train["bash"]
    assert train["env"] == {"AZURE_STORAGE_CONNECTION_STRING": "$(AZURE_STORAGE_CONNECTION_STRING)"}


def test_docker_target_uses_ssh_secrets(project: Project) -> None:
    options = CiOptions(registry="myreg.azurecr.io", store="az://models", target="docker")
    workflow = yaml.safe_load(render_github(project, ".", options, COMMAND))
    deploy = workflow["jobs"]["train-build-deploy"]["steps"][-1]
    assert deploy["name"] == "Deploy to the Docker host"
    assert 'shipml deploy docker "$SERVE_IMAGE" --host "$DEPLOY_HOST"' in deploy["run"]
    assert set(deploy["env"]) == {"DEPLOY_HOST", "DEPLOY_SSH_KEY", "DEPLOY_KNOWN_HOSTS"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CiOptions(registry="r.io", store="az://m", target="swarm"), "unknown --target 'swarm'"),
        (CiOptions(registry="r.io", store="./store"), "local folder stays on this machine"),
        (CiOptions(registry="r.io/team", store="az://m"), "give the host alone"),
        (CiOptions(registry="r.io", store="az://m", schedule="nightly"), "5 fields"),
        (CiOptions(registry="r.io", store="az://m", schedule="0 3 * *"), "5 fields"),
        (
            CiOptions(registry="r.io", store="az://m", target="aci"),
            "--target aci needs --resource-group",
        ),
        (
            CiOptions(
                registry="r.io",
                store="az://m",
                target="aci",
                resource_group="rg",
                aci_name="Bad_Name",
            ),
            "container group name 'Bad_Name'",
        ),
        (
            CiOptions(registry="r.io", store="az://m", image_name="Team/Iris"),
            "not a valid repository",
        ),
        (CiOptions(registry="r.io", store="az://m", branch="a b"), "--branch 'a b'"),
    ],
)
def test_bad_options_fail_with_a_clear_message(
    project: Project, options: CiOptions, message: str
) -> None:
    for render in (render_github, render_azure):
        with pytest.raises(ManifestError) as caught:
            render(project, ".", options, COMMAND)
        assert message in str(caught.value)


def test_written_at_the_top_of_the_git_repository(project: Project) -> None:
    repo = project.root.parents[1]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    written = write("github", project, OPTIONS, None, COMMAND)
    assert written == repo.resolve() / ".github" / "workflows" / "shipml.yml"
    workflow = yaml.safe_load(written.read_text())
    steps = workflow["jobs"]["train-build-deploy"]["steps"]
    assert {s.get("working-directory") for s in steps} == {None, "models/iris"}
    azure = write("azure", project, OPTIONS, None, COMMAND)
    assert azure == repo.resolve() / "azure-pipelines.yml"
    azure.write_text("trigger: none\n")  # now the user's own file
    with pytest.raises(ManifestError, match="was not generated by shipml"):
        write("azure", project, OPTIONS, None, COMMAND)
    assert azure.read_text() == "trigger: none\n"


def test_outside_git_the_project_is_the_top(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "ci.yml"
    write("github", project, OPTIONS, out, COMMAND)
    steps = yaml.safe_load(out.read_text())["jobs"]["train-build-deploy"]["steps"]
    assert all("working-directory" not in s for s in steps)
