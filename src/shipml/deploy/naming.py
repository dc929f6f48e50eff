"""How a deployment is named and labelled, so redeploys and ``--remove`` find its parts.

Every container, network and Compose project of a deployment carries the label
``io.shipml.deploy=NAME`` plus its target and role; the name defaults to the model name
the serve image records (``io.shipml.model.name``), so deploying ``iris:1`` then
``iris:2`` updates one deployment, ``iris``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docker.errors import DockerException
from docker.utils import parse_env_file

from shipml.errors import ShipmlError

DEPLOY = "io.shipml.deploy"
TARGET = "io.shipml.deploy.target"
ROLE = "io.shipml.deploy.role"
GENERATION = "io.shipml.deploy.generation"
MODEL_NAME = "io.shipml.model.name"
MODEL_VERSION = "io.shipml.model.version"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class DeployError(ShipmlError):
    code = "deploy_error"


def deployment_name(explicit: str | None, image: str, labels: dict[str, str] | None) -> str:
    """``--name``, else the image's model name, else its repository's last part."""
    if explicit:
        name = explicit
        if not NAME.match(name):
            raise DeployError(
                f"--name {name!r} is not a valid deployment name: use lower-case letters, "
                "digits, '-' and '_' (at most 63, starting with a letter or digit)"
            )
        return name
    raw = (labels or {}).get(MODEL_NAME) or image.rsplit("/", 1)[-1].split(":", 1)[0]
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")[:63]
    if not name:
        raise DeployError(f"cannot derive a deployment name from {image!r}: pass --name")
    return name


def labels(name: str, target: str, role: str, **extra: str) -> dict[str, str]:
    return {DEPLOY: name, TARGET: target, ROLE: role, **extra}


def selector(name: str, target: str, role: str | None = None) -> dict[str, Any]:
    """An engine filter for the parts of deployment ``name`` (of one role, if given)."""
    wanted = [f"{DEPLOY}={name}", f"{TARGET}={target}"]
    if role:
        wanted.append(f"{ROLE}={role}")
    return {"label": wanted}


def read_env(env_file: Path | None, pairs: list[str] | None) -> dict[str, str]:
    """Variables from a Docker-style env file (KEY=VALUE lines), then ``--env KEY=VALUE``."""
    env: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            raise DeployError(f"--env-file {env_file}: no such file")
        try:
            env.update(parse_env_file(str(env_file)))
        except DockerException as exc:
            raise DeployError(f"--env-file {env_file}: {exc}; write KEY=VALUE lines") from None
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DeployError(f"--env {pair!r} must be KEY=VALUE")
        env[key] = value
    return env
