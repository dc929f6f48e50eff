"""``shipml ci github|azure``: a pipeline that trains, registers, builds, pushes and deploys.

One job, on every push to the branch, every night and on demand: build the project's
train image, run it so it registers a new version in the (remote) store, build the serve
image for that version (smoke-tested by ``shipml build``), push it, deploy it. Every step
calls ``shipml`` itself — the pipeline holds no logic of its own that could drift from
the tool. Registry, store and cluster credentials come from the CI system's secrets
(GitHub repository secrets; an Azure DevOps variable group), mapped into the environment
of the one step that needs each, never written in the file.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shipml import __version__
from shipml.deploy import secrets
from shipml.deploy.generated import dump_yaml, header, write_file
from shipml.deploy.targets import aci
from shipml.deploy.validation import ManifestError
from shipml.project import Project

Vendor = Literal["github", "azure"]
TARGETS = ("kubernetes", "aci", "docker")
CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# Where the step-to-step variables and temporary files go, per CI system.
TEMP = {"github": "$RUNNER_TEMP", "azure": "$AGENT_TEMPDIRECTORY"}
SHA = {"github": "$GITHUB_SHA", "azure": "$BUILD_SOURCEVERSION"}


@dataclass(frozen=True)
class CiOptions:
    registry: str  # e.g. myreg.azurecr.io
    store: str  # a remote store URL, e.g. az://models
    target: str = "kubernetes"
    image_name: str | None = None  # repository under the registry; default: the project name
    branch: str = "main"
    schedule: str = "0 3 * * *"  # nightly, 03:00 UTC
    namespace: str | None = None  # kubernetes
    pull_secret: str | None = None  # kubernetes
    resource_group: str | None = None  # aci
    aci_name: str | None = None  # aci; default: the image name
    variable_group: str = "shipml"  # azure: the variable group holding the secrets
    service_connection: str = "shipml-azure"  # azure + aci: the Azure service connection
    package: str = field(default=f"shipml[azure]=={__version__}")

    def check(self) -> None:
        if self.target not in TARGETS:
            raise ManifestError(
                f"unknown --target {self.target!r}; choose from {', '.join(TARGETS)}"
            )
        if not re.match(r"^[a-z0-9.-]+(:[0-9]+)?$", self.registry):
            raise ManifestError(
                f"--registry {self.registry!r} is not a registry host: give the host alone, "
                "e.g. myreg.azurecr.io (a path such as OWNER/ goes in --image-name)"
            )
        secrets.remote_store(self.store)
        fields = self.schedule.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise ManifestError(
                f"--schedule {self.schedule!r} is not a cron line of 5 fields "
                "(minute hour day month weekday), e.g. '0 3 * * *' for 03:00 UTC nightly"
            )
        if not re.match(r"^[\w./-]+$", self.branch):
            raise ManifestError(f"--branch {self.branch!r} is not a branch name")
        if self.target == "aci" and not self.resource_group:
            raise ManifestError("--target aci needs --resource-group")


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    secrets: dict[str, str] = field(default_factory=dict)  # env variable -> CI secret name
    in_project: bool = False
    azure_login: bool = False  # runs with an Azure CLI login (ACI)


def _export(vendor: Vendor, name: str, value: str) -> str:
    if vendor == "github":
        return f'echo "{name}={value}" >> "$GITHUB_ENV"'
    return f'echo "##vso[task.setvariable variable={name}]{value}"'


def steps(vendor: Vendor, options: CiOptions, image_name: str) -> list[Step]:
    """The pipeline's steps, the same for both CI systems but for how values pass on."""
    temp, sha = TEMP[vendor], SHA[vendor]
    store_env = {name: name for name in secrets.store_credentials(options.store)}
    passing = " ".join(f"-e {name}" for name in ["SHIPML_STORE", *store_env])
    registry_env = {
        "SHIPML_REGISTRY_USERNAME": "REGISTRY_USERNAME",
        "SHIPML_REGISTRY_PASSWORD": "REGISTRY_PASSWORD",
    }
    extra = secrets.store_extra(options.store)
    return [
        Step("Install shipml", f"python -m pip install {shlex.quote(options.package)}"),
        Step(
            "Log in to the registry",
            'shipml login "$REGISTRY" -u "$SHIPML_REGISTRY_USERNAME"',
            registry_env,
        ),
        Step(
            "Build the train image",
            f'shipml build --target train --tag "$REGISTRY/$IMAGE_NAME-train:{sha}" '
            f"--extra {extra}",
            in_project=True,
        ),
        Step(
            "Train and register a model version",
            "\n".join(
                [
                    f'docker run --rm {passing} "$REGISTRY/$IMAGE_NAME-train:{sha}" '
                    f'| tee "{temp}/train.log"',
                    f"ref=$(sed -n 's/^Registered \\([^ ]*\\).*/\\1/p' \"{temp}/train.log\")",
                    'test -n "$ref" || { echo "training registered no model" >&2; exit 1; }',
                    _export(vendor, "MODEL_REF", "$ref"),
                    _export(vendor, "SERVE_IMAGE", "$REGISTRY/$IMAGE_NAME:${ref##*:}"),
                ]
            ),
            store_env,
        ),
        Step(
            "Build, smoke-test and push the serve image",
            'shipml build "$MODEL_REF" --tag "$SERVE_IMAGE" --push',
            {**store_env, **registry_env},
            in_project=True,
        ),
        _deploy_step(vendor, options, image_name),
    ]


def _deploy_step(vendor: Vendor, options: CiOptions, image_name: str) -> Step:
    temp = TEMP[vendor]
    if options.target == "kubernetes":
        flags = "".join(
            f" --{flag} {shlex.quote(value)}"
            for flag, value in (
                ("namespace", options.namespace),
                ("pull-secret", options.pull_secret),
            )
            if value
        )
        script = "\n".join(
            [
                "umask 077",
                f'printf \'%s\' "$KUBE_CONFIG" > "{temp}/kubeconfig"',
                f'export KUBECONFIG="{temp}/kubeconfig"',
                f'shipml deploy kubernetes "$SERVE_IMAGE" --out "{temp}/kubernetes"{flags} --apply',
            ]
        )
        return Step("Deploy to Kubernetes", script, {"KUBE_CONFIG": "KUBE_CONFIG"})
    if options.target == "aci":
        resource_group = options.resource_group or ""  # CiOptions.check: set for aci
        name = options.aci_name or image_name.rsplit("/", 1)[-1]
        aci.check(aci.Options(resource_group=resource_group, name=name))
        group = shlex.quote(resource_group)
        script = (
            f'shipml deploy aci "$SERVE_IMAGE" --resource-group {group} '
            f'--name {shlex.quote(name)} --out "{temp}/aci.yaml" --apply'
        )
        registry_env = {
            "SHIPML_REGISTRY_USERNAME": "REGISTRY_USERNAME",
            "SHIPML_REGISTRY_PASSWORD": "REGISTRY_PASSWORD",
        }
        return Step("Deploy to Azure Container Instances", script, registry_env, azure_login=True)
    script = "\n".join(
        [
            "install -d -m 700 ~/.ssh",
            "printf '%s\\n' \"$DEPLOY_SSH_KEY\" > ~/.ssh/id_shipml && chmod 600 ~/.ssh/id_shipml",
            "printf '%s\\n' \"$DEPLOY_KNOWN_HOSTS\" >> ~/.ssh/known_hosts",
            "printf 'Host *\\n  IdentityFile ~/.ssh/id_shipml\\n' >> ~/.ssh/config",
            'shipml deploy docker "$SERVE_IMAGE" --host "$DEPLOY_HOST"',
        ]
    )
    ssh = {name: name for name in ("DEPLOY_HOST", "DEPLOY_SSH_KEY", "DEPLOY_KNOWN_HOSTS")}
    return Step("Deploy to the Docker host", script, ssh)


def _github_secret(name: str) -> str:
    return "${{ secrets." + name + " }}"


def _script(step: Step) -> str:
    return "set -euo pipefail\n" + step.script + "\n"


def _secret_names(all_steps: list[Step]) -> list[str]:
    names = [secret for step in all_steps for secret in step.secrets.values()]
    return list(dict.fromkeys(names))


def render_github(project: Project, workdir: str, options: CiOptions, command: list[str]) -> str:
    options.check()
    image_name = _image_name(project, options)
    all_steps = steps("github", options, image_name)
    rendered: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
    ]
    for step in all_steps:
        if step.azure_login:
            rendered.append(
                {
                    "name": "Log in to Azure",
                    "uses": "azure/login@v2",
                    "with": {"creds": _github_secret("AZURE_CREDENTIALS")},
                }
            )
        entry: dict[str, Any] = {"name": step.name}
        if step.in_project and workdir != ".":
            entry["working-directory"] = workdir
        if step.secrets:
            entry["env"] = {k: _github_secret(v) for k, v in step.secrets.items()}
        entry["run"] = _script(step)
        rendered.append(entry)
    workflow = {
        "name": f"shipml {project.name}",
        "on": {
            "push": {"branches": [options.branch]},
            "schedule": [{"cron": options.schedule}],
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": {"group": f"shipml-{image_name}", "cancel-in-progress": False},
        "env": {
            "REGISTRY": options.registry,
            "IMAGE_NAME": image_name,
            "SHIPML_STORE": options.store,
        },
        "jobs": {
            "train-build-deploy": {
                "name": "train, register, build, push, deploy",
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 90,
                "defaults": {"run": {"shell": "bash"}},
                "steps": rendered,
            }
        },
    }
    names = _secret_names(all_steps) + (["AZURE_CREDENTIALS"] if options.target == "aci" else [])
    notes = ["Repository secrets it reads (Settings > Secrets and variables > Actions):"]
    notes += [f"  {name}" for name in names]
    return header(command, *notes) + dump_yaml(workflow)


def render_azure(project: Project, workdir: str, options: CiOptions, command: list[str]) -> str:
    options.check()
    image_name = _image_name(project, options)
    all_steps = steps("azure", options, image_name)
    rendered: list[dict[str, Any]] = [
        {"checkout": "self"},
        {
            "task": "UsePythonVersion@0",
            "displayName": "Python 3.11",
            "inputs": {"versionSpec": "3.11"},
        },
    ]
    rendered += [_azure_step(step, options, workdir) for step in all_steps]
    pipeline = {
        "trigger": {"branches": {"include": [options.branch]}},
        "pr": "none",
        "schedules": [
            {
                "cron": options.schedule,
                "displayName": "nightly training",
                "branches": {"include": [options.branch]},
                "always": True,
            }
        ],
        "variables": [
            {"group": options.variable_group},
            {"name": "REGISTRY", "value": options.registry},
            {"name": "IMAGE_NAME", "value": image_name},
            {"name": "SHIPML_STORE", "value": options.store},
        ],
        "pool": {"vmImage": "ubuntu-latest"},
        "jobs": [
            {
                "job": "train_build_deploy",
                "displayName": "train, register, build, push, deploy",
                "timeoutInMinutes": 90,
                "steps": rendered,
            }
        ],
    }
    notes = [f"Variables it reads from the variable group '{options.variable_group}' (secret):"]
    notes += [f"  {name}" for name in _secret_names(all_steps)]
    if options.target == "aci":
        notes.append(f"and the Azure service connection '{options.service_connection}'.")
    return header(command, *notes) + dump_yaml(_strings(pipeline))


def _azure_step(step: Step, options: CiOptions, workdir: str) -> dict[str, Any]:
    """One step of the Azure pipeline: a bash step, or an Azure CLI one that logs in."""
    env = {k: f"$({v})" for k, v in step.secrets.items()}
    if step.azure_login:
        entry: dict[str, Any] = {
            "task": "AzureCLI@2",
            "displayName": step.name,
            "inputs": {
                "azureSubscription": options.service_connection,
                "scriptType": "bash",
                "scriptLocation": "inlineScript",
                "inlineScript": _script(step),
            },
        }
    else:
        entry = {"bash": _script(step), "displayName": step.name}
        if step.in_project and workdir != ".":
            entry["workingDirectory"] = workdir
    if env:
        entry["env"] = env
    return entry


def _strings(data: Any) -> Any:
    """Every scalar as a string: Azure Pipelines reads YAML that way (``always: 'true'``),
    and its published schema says so."""
    if isinstance(data, dict):
        return {key: _strings(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_strings(item) for item in data]
    if isinstance(data, bool):
        return str(data).lower()
    return str(data)


def _image_name(project: Project, options: CiOptions) -> str:
    """The repository under the registry: --image-name, or made from the project name."""
    name = options.image_name or re.sub(r"[^a-z0-9-]+", "-", project.name.lower()).strip("-")
    if not REPOSITORY.match(name):
        raise ManifestError(
            f"image name {name!r} is not a valid repository: lowercase letters, digits, "
            "'.', '_', '-' and '/', e.g. team/iris"
        )
    return name


def repository_root(project_root: Path) -> Path:
    """The git work tree holding the project (pipelines live at its top), or the project."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=project_root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return project_root
    return Path(top).resolve()


DEFAULT_FILES: dict[Vendor, str] = {
    "github": ".github/workflows/shipml.yml",
    "azure": "azure-pipelines.yml",
}


def write(
    vendor: Vendor, project: Project, options: CiOptions, out: Path | None, command: list[str]
) -> Path:
    """Render the pipeline for ``vendor`` and write it (default: at the repository top)."""
    root = repository_root(project.root.resolve())
    workdir = project.root.resolve().relative_to(root).as_posix()
    render = render_github if vendor == "github" else render_azure
    text = render(project, workdir, options, command)
    target = out or root / DEFAULT_FILES[vendor]
    write_file(target, text)
    return target
