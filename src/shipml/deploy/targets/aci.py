"""``shipml deploy aci``: an Azure Container Instances container group for a serve image.

The file follows Azure's YAML reference for container groups (REST API 2021-10-01:
https://learn.microsoft.com/azure/container-instances/container-instances-reference-yaml)
and is what ``az container create --resource-group RG --file FILE`` takes.

Secrets: ACI has no secret store of its own — a secure environment variable's value
(``secureValue``) and a registry password must be *in* the file given to ``az``. So the
written file holds ``${VARIABLE}`` placeholders instead of values, and the values are
put in at deployment time, from the environment, into a private temporary copy that is
removed as soon as ``az`` has read it: ``--apply`` does exactly that, and the printed
commands do the same with ``envsubst``. The written file is safe to commit; it must not
be passed to ``az`` unfilled (the header says so).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipml.deploy import secrets
from shipml.deploy.generated import dump_yaml, header, write_file
from shipml.deploy.image_facts import ImageFacts, registry_of
from shipml.deploy.probes import LIVENESS_TIMEOUT, READINESS_TIMEOUT
from shipml.deploy.validation import ManifestError, at_least
from shipml.store import parse_reference

API_VERSION = "2021-10-01"
# Azure's rule for container group names: 1-63 characters, lowercase letters, digits and
# single dashes, not at either end.
GROUP_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
DNS_NAME_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class Options:
    resource_group: str
    name: str
    location: str | None = None  # default: the resource group's location
    cpu: float = 1.0
    memory: float = 1.5  # GB
    dns_label: str | None = None
    workers: int | None = None
    api_keys: bool = False  # require API keys, from $SHIPML_API_KEYS at deployment
    store: str | None = None  # serve a model fetched from this store instead of the baked one
    model: str | None = None
    registry_credentials: bool | None = None  # default: when the image names a registry

    def check(self) -> None:
        if not RESOURCE_GROUP.match(self.resource_group):
            raise ManifestError(
                f"resource group {self.resource_group!r} is not a valid name: 1 to 90 letters, "
                "digits, '-', '_', '.' and parentheses, not ending with '.'"
            )
        if len(self.name) > 63 or not GROUP_NAME.match(self.name):
            raise ManifestError(
                f"container group name {self.name!r} is not valid in Azure: 1 to 63 lowercase "
                "letters, digits and single '-', not at the start or end"
            )
        if self.dns_label and not DNS_NAME_LABEL.match(self.dns_label):
            raise ManifestError(
                f"--dns-label {self.dns_label!r} is not valid: 3 to 63 lowercase letters, digits "
                "and '-', starting with a letter"
            )
        for flag, value in (("--cpu", self.cpu), ("--memory", self.memory)):
            if value <= 0:
                raise ManifestError(f"{flag} must be more than zero, got {value}")
        if self.workers is not None:
            at_least(self.workers, 1, "--workers")
        if bool(self.store) != bool(self.model):
            raise ManifestError("--store and --model go together: the model to fetch and where")
        if self.store:
            secrets.remote_store(self.store)
        if self.model:
            parse_reference(self.model)


# Nothing in the options is left to default: checked, they are what is written.
Resolved = Options


def check(options: Options) -> Resolved:
    """``options``, checked; raises on the first wrong one (nothing is left to default)."""
    options.check()
    return options


def render(facts: ImageFacts, options: Options, command: list[str]) -> str:
    """The container group YAML, with placeholders where secret values go."""
    options.check()
    port = facts.port
    container = _container(facts, options)
    properties: dict[str, Any] = {"containers": [container]}
    credentials = _registry_credentials(facts, options)
    if credentials:
        properties["imageRegistryCredentials"] = credentials
    address: dict[str, Any] = {"type": "Public", "ports": [{"port": port, "protocol": "TCP"}]}
    if options.dns_label:
        address["dnsNameLabel"] = options.dns_label
    properties |= {"ipAddress": address, "osType": "Linux", "restartPolicy": "Always"}
    group: dict[str, Any] = {"apiVersion": API_VERSION, "name": options.name}
    if options.location:
        group["location"] = options.location
    group |= {
        "type": "Microsoft.ContainerInstance/containerGroups",
        "tags": {"managed-by": "shipml", "shipml-model": options.model or facts.model_ref},
        "properties": properties,
    }
    body = dump_yaml(group)
    needed = secrets.placeholders(body)
    notes = [
        "${VARIABLE} placeholders stand for secrets: do not give this file to az as it is.",
        "Deploy with 'shipml deploy aci ... --apply', or fill it from the environment:",
        *[f"  {line}" for line in fill_and_create_lines(Path("FILE"), options, needed)],
    ]
    return header(command, *notes) + body


def _container(facts: ImageFacts, options: Options) -> dict[str, Any]:
    """The one container: the image, its environment (secrets as placeholders), probes."""
    port = facts.port
    env: list[dict[str, str]] = [
        {"name": "SHIPML_HOST", "value": "0.0.0.0"},
        {"name": "SHIPML_PORT", "value": str(port)},
    ]
    if options.workers is not None:
        env.append({"name": "SHIPML_WORKERS", "value": str(options.workers)})
    if options.api_keys:
        env.append({"name": secrets.API_KEYS, "secureValue": secrets.placeholder(secrets.API_KEYS)})
    if options.store and options.model:
        env += [
            {"name": "SHIPML_STORE", "value": options.store},
            {"name": "SHIPML_MODEL", "value": options.model},
        ]
        env += [
            {"name": variable, "secureValue": secrets.placeholder(variable)}
            for variable in secrets.store_credentials(options.store)
        ]
    probe = {"port": port, "scheme": "http"}
    return {
        "name": "model",
        "properties": {
            "image": facts.image,
            "ports": [{"port": port, "protocol": "TCP"}],
            "environmentVariables": env,
            "resources": {"requests": {"cpu": options.cpu, "memoryInGB": options.memory}},
            # /health/live answers as soon as the server runs, even while the model loads.
            "livenessProbe": {
                "httpGet": {"path": "/health/live", **probe},
                "initialDelaySeconds": 10,
                "periodSeconds": 10,
                "timeoutSeconds": LIVENESS_TIMEOUT,
                "failureThreshold": 3,
            },
            "readinessProbe": {
                "httpGet": {"path": "/health/ready", **probe},
                "initialDelaySeconds": 2,
                "periodSeconds": 5,
                "timeoutSeconds": READINESS_TIMEOUT,
                "failureThreshold": 3,
            },
        },
    }


def _registry_credentials(facts: ImageFacts, options: Options) -> list[dict[str, str]]:
    """The registry login for the pull, as placeholders (none for a public image)."""
    registry = registry_of(facts.image)
    wants_credentials = (
        options.registry_credentials if options.registry_credentials is not None else bool(registry)
    )
    if not wants_credentials:
        return []
    if not registry:
        raise ManifestError(
            f"{facts.image} names no registry (e.g. myreg.azurecr.io/iris:3), so there is "
            "no server for --registry-credentials"
        )
    return [
        {
            "server": registry,
            "username": secrets.placeholder(secrets.REGISTRY_USERNAME),
            "password": secrets.placeholder(secrets.REGISTRY_PASSWORD),
        }
    ]


def envsubst_command(path: Path, variables: list[str]) -> str:
    """An ``envsubst`` call that fills only our placeholders (nothing else in the file)."""
    names = " ".join(secrets.placeholder(v) for v in variables)
    return f"envsubst {shlex.quote(names)} < {shlex.quote(str(path))}"


def fill_and_create_lines(path: Path, options: Options, variables: list[str]) -> list[str]:
    """Shell lines that deploy ``path``: check the variables, fill a private copy, create."""
    create = f"az container create --resource-group {shlex.quote(options.resource_group)}"
    if not variables:
        return [f"{create} --file {shlex.quote(str(path))}"]
    checks = " ".join(f'"${{{v}:?set {v}}}"' for v in variables)
    return [
        f": {checks}",
        "filled=$(mktemp) && "
        f'{envsubst_command(path, variables)} > "$filled" && {create} --file "$filled"; '
        'rm -f "$filled"',
    ]


def write(facts: ImageFacts, options: Options, out: Path, command: list[str]) -> list[str]:
    """Write the YAML to ``out``; returns the shell lines that deploy it."""
    text = render(facts, options, command)
    write_file(out, text)
    return fill_and_create_lines(out, options, secrets.placeholders(text))


def az_command(resource_group: str, file: Path) -> list[str]:
    return ["az", "container", "create", "--resource-group", resource_group, "--file", str(file)]


def apply(out: Path, resource_group: str, environment: dict[str, str] | None = None) -> str:
    """Fill ``out`` from the environment into a private copy and run ``az container create``."""
    if shutil.which("az") is None:
        raise ManifestError(
            "the Azure CLI (az) is not on PATH: install it "
            "(https://learn.microsoft.com/cli/azure/install-azure-cli) and 'az login', or "
            f"deploy {out} with the commands printed without --apply"
        )
    env = dict(os.environ if environment is None else environment)
    with secrets.filled_copy(out, env) as filled:
        result = subprocess.run(
            az_command(resource_group, filled), capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ManifestError(f"az container create failed: {detail}")
    return result.stdout.strip()
