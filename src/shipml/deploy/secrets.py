"""Secrets in generated files: named, never written.

Generated files only ever hold the *names* of secrets — a Kubernetes Secret to
reference, a CI secret to map, or a ``${VARIABLE}`` placeholder that is filled from the
environment at the moment of deployment (into a private temporary file that is removed
straight after). So a generated file can be committed, printed or attached to an issue.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from shipml.deploy.generated import SingleQuoted
from shipml.deploy.validation import ManifestError

# Variables that hold a store's credentials, by URL scheme (see shipml.store.backend).
STORE_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "az": ("AZURE_STORAGE_CONNECTION_STRING",),
    "abfs": ("AZURE_STORAGE_CONNECTION_STRING",),
    "abfss": ("AZURE_STORAGE_CONNECTION_STRING",),
}
# The image extra a store scheme needs (shipml build --extra).
STORE_EXTRAS = {"az": "azure", "abfs": "azure", "abfss": "azure"}
API_KEYS = "SHIPML_API_KEYS"
REGISTRY_USERNAME = "SHIPML_REGISTRY_USERNAME"
REGISTRY_PASSWORD = "SHIPML_REGISTRY_PASSWORD"
PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def remote_store(url: str) -> str:
    """``url`` if it names a store a remote machine can reach (not a local folder)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in STORE_CREDENTIALS:
        raise ManifestError(
            f"store {url!r} cannot be reached from a deployment: use an Azure Blob Storage "
            "store such as az://models (a local folder stays on this machine)"
        )
    return url


def store_credentials(url: str) -> tuple[str, ...]:
    """The environment variables holding the credentials of the store at ``url``."""
    return STORE_CREDENTIALS[remote_store(url).split("://", 1)[0]]


def store_extra(url: str) -> str:
    return STORE_EXTRAS[remote_store(url).split("://", 1)[0]]


def placeholder(variable: str) -> str:
    """``${VARIABLE}``, written single-quoted into YAML so any value can be put in its place
    (only a ``'`` needs care: :func:`fill` doubles it, as YAML wants)."""
    return SingleQuoted("${" + variable + "}")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def placeholders(text: str) -> list[str]:
    """The variables named by placeholders in ``text`` (comments aside), once each."""
    found = [
        name
        for line in text.splitlines()
        if not _is_comment(line)
        for name in PLACEHOLDER.findall(line)
    ]
    return list(dict.fromkeys(found))


def fill(text: str, environment: Mapping[str, str]) -> str:
    """``text`` with every placeholder replaced by its (non-empty) environment value.

    Placeholders sit inside single-quoted YAML strings, so a value is safe there whatever
    it holds (``#``, ``: ``, quotes) once its ``'`` are doubled. Comment lines are left as
    they are: they only explain the placeholders.
    """
    missing = [name for name in placeholders(text) if not environment.get(name)]
    if missing:
        raise ManifestError(
            f"set {', '.join(missing)} in the environment: the deployment needs "
            f"{'its value' if len(missing) == 1 else 'their values'} and the generated "
            "file only names them"
        )

    def value(match: re.Match[str]) -> str:
        return environment[match.group(1)].replace("'", "''")

    return "".join(
        line if _is_comment(line) else PLACEHOLDER.sub(value, line)
        for line in text.splitlines(keepends=True)
    )


@contextlib.contextmanager
def filled_copy(path: Path, environment: Mapping[str, str]) -> Iterator[Path]:
    """A private (0600) temporary copy of ``path`` with its placeholders filled.

    Removed on exit, whatever happens, so secret values live on disk only while the
    deployment command reads them.
    """
    text = fill(path.read_text(), environment)
    handle, name = tempfile.mkstemp(prefix="shipml-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "w") as output:
            output.write(text)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
