"""The container engine, through the Docker SDK: Docker itself or Podman's Docker socket.

Only the handful of operations shipml needs, each turning the engine's failures into a
message that says what to do. ``DOCKER_HOST`` picks the engine (``unix://…``,
``ssh://user@host``); Podman users point it at ``unix:///run/podman/podman.sock``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import httpx
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from shipml.errors import ShipmlError

RUN_LABEL = "io.shipml.run"


class EngineError(ShipmlError):
    code = "engine_error"


def connect(host: str | None = None) -> docker.DockerClient:
    """The engine at ``host`` (``ssh://user@host[:port]``, ``unix://…``, ``tcp://…``), or the
    one ``DOCKER_HOST`` names (the local socket by default).

    ``ssh://`` uses Docker's own SSH transport through paramiko: it reads ``~/.ssh/config``,
    ``~/.ssh/known_hosts`` and the usual keys or agent, and runs ``docker system
    dial-stdio`` on the host, so the host needs only sshd and the docker CLI.
    """
    if host and host.startswith("ssh://"):
        return _connect_ssh(host)
    try:
        if host:
            client = docker.DockerClient(base_url=host, timeout=300)
        else:
            client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as exc:
        raise EngineError(
            f"cannot reach a container engine ({exc}). Start Docker, or point DOCKER_HOST "
            "at one (Podman: unix:///run/podman/podman.sock)"
        ) from None
    return client


def _connect_ssh(host: str) -> docker.DockerClient:
    try:
        import paramiko  # on use: paramiko only for ssh:// engines
    except ImportError:
        raise EngineError(
            f"{host} needs the SSH transport: pip install 'shipml[ssh]' (paramiko)"
        ) from None
    url = urlsplit(host)
    hostname = f"{url.hostname}:{url.port}" if url.port else str(url.hostname)
    port = f"-p {url.port} " if url.port else ""
    login = f"{url.username}@{url.hostname}" if url.username else str(url.hostname)
    check = f"ssh {port}{login} docker version"
    try:
        client = docker.DockerClient(base_url=host, timeout=300, max_pool_size=4)
        client.ping()
    except paramiko.AuthenticationException:
        raise EngineError(
            f"{hostname} refused the SSH login: put your public key in the host's "
            "~/.ssh/authorized_keys (ssh-copy-id), or load the key in ssh-agent"
        ) from None
    except paramiko.SSHException as exc:
        hint = ""
        if "known_hosts" in str(exc):
            keyscan = f"ssh-keyscan {port}{url.hostname}"
            hint = f"; trust the host once: {keyscan} >> ~/.ssh/known_hosts (check the key)"
        raise EngineError(f"SSH to {hostname} failed: {exc}{hint}") from None
    except OSError as exc:
        raise EngineError(
            f"cannot reach {hostname} over SSH ({exc}): is the host up, sshd running "
            f"and the port right? Try: {check}"
        ) from None
    except DockerException as exc:
        raise EngineError(
            f"SSH to {hostname} works but its Docker engine does not answer ({exc}): the "
            f"host needs the docker CLI and a running engine. Try: {check}"
        ) from None
    return client


def build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    on_line: Callable[[str], None],
    no_cache: bool = False,
) -> str:
    """Build ``context`` (with its Dockerfile) as ``tag``; returns the image id."""
    image_id = None
    tail: list[str] = []
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            nocache=no_cache,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = "\n  ".join(tail[-8:])
                raise EngineError(f"the image build failed: {chunk['error'].strip()}\n  {detail}")
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if line.strip():
                        tail.append(line)
                        on_line(line)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except APIError as exc:
        raise EngineError(f"the engine refused the build: {exc.explanation or exc}") from None
    if image_id is None:
        image_id = client.images.get(tag).id
    return str(image_id)


def image(client: docker.DockerClient, name: str) -> Any:
    try:
        return client.images.get(name)
    except ImageNotFound:
        raise EngineError(
            f"no image {name!r} here; build it with 'shipml build' or pull it"
        ) from None


def run(
    client: docker.DockerClient,
    name: str,
    *,
    port: int | None,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    container_name: str | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
    detach: bool = True,
) -> Any:
    """Start ``name`` with its port 8000 published on ``host:port`` (random when None)."""
    image(client, name)
    try:
        return client.containers.run(
            name,
            detach=detach,
            environment=env or {},
            name=container_name,
            ports={"8000/tcp": (host, port)},
            labels={RUN_LABEL: "1"},
            volumes=volumes or {},
        )
    except APIError as exc:
        raise EngineError(f"could not start {name}: {exc.explanation or exc}") from None


def published_url(container: Any) -> str:
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]
    host = binding["HostIp"] if binding["HostIp"] not in ("", "0.0.0.0") else "127.0.0.1"
    return f"http://{host}:{binding['HostPort']}"


def wait_ready(container: Any, url: str, timeout: float = 60) -> float:
    """Wait until ``url/health/ready`` answers 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        container.reload()
        if container.status in ("exited", "dead"):
            logs = container.logs(tail=20).decode(errors="replace")
            raise EngineError(f"the container stopped before it was ready:\n{logs}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    logs = container.logs(tail=20).decode(errors="replace")
    raise EngineError(f"the container was not ready after {timeout:.0f}s:\n{logs}")


def healthcheck_command(container: Any) -> list[str] | None:
    """The image's ``HEALTHCHECK`` as an exec command line, or None when it has none."""
    test = (container.attrs["Config"].get("Healthcheck") or {}).get("Test") or []
    if test[:1] == ["CMD"]:
        return list(test[1:])
    if test[:1] == ["CMD-SHELL"]:
        return ["/bin/sh", "-c", test[1]]
    return None


def wait_healthy(container: Any, timeout: float = 120, interval: float = 0.5) -> float:
    """Wait until the image's own health check passes; returns the seconds it took.

    The check runs inside the container (``docker exec``), now rather than on the
    engine's 10 s schedule, and needs no network path from here to the container: the
    same wait works for a container on a remote host whose ports we cannot reach.
    """
    command = healthcheck_command(container)
    if command is None:
        raise EngineError(
            f"{container.name}'s image has no HEALTHCHECK, so its readiness cannot be "
            "checked; build it with 'shipml build'"
        )
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        container.reload()
        # With a restart policy a crashing container never stays "exited": it restarts.
        if container.status in ("exited", "dead") or container.attrs.get("RestartCount"):
            raise EngineError(
                f"{container.name} stopped before it was ready; its last log lines:\n"
                + last_logs(container)
            )
        try:
            if container.exec_run(command).exit_code == 0:
                return time.monotonic() - started
        except APIError:
            pass  # restarting or not started yet: try again
        time.sleep(interval)
    raise EngineError(
        f"{container.name} was not ready after {timeout:.0f}s; its last log lines:\n"
        + last_logs(container)
    )


def last_logs(container: Any, lines: int = 20) -> str:
    try:
        text = container.logs(tail=lines).decode(errors="replace").rstrip()
    except APIError:
        return "  (no logs)"
    return "\n".join(f"  {line}" for line in text.splitlines()) or "  (no logs)"


def ensure_image(client: docker.DockerClient, name: str, where: str) -> Any:
    """The image ``name`` on this engine, pulled from its registry when it is not there."""
    try:
        return client.images.get(name)
    except ImageNotFound:
        pass
    repository, tag = split_name(name)
    try:
        client.images.pull(repository, tag=tag)
        return client.images.get(name)
    except (APIError, ImageNotFound) as exc:
        reason = exc.explanation if isinstance(exc, APIError) else str(exc)
        raise EngineError(
            f"the image {name} is not on {where} and could not be pulled ({reason}). "
            f"Push it to a registry {where} can reach (shipml push REGISTRY/NAME:TAG, "
            "then deploy that name), or build it there"
        ) from None


def start_error(exc: APIError, what: str, port: int | None, where: str) -> EngineError:
    """Turn the engine's refusal to start ``what`` into a message that says what to do."""
    reason = str(exc.explanation or exc)
    if port is not None and ("already allocated" in reason or "address already in use" in reason):
        return EngineError(
            f"port {port} is already taken on {where}: pick another with --port, or "
            "stop what listens there"
        )
    if "Conflict" in reason and "already in use" in reason:
        return EngineError(
            f"a container named like {what} already exists on {where} and was not made by "
            f"this deployment: remove it, or deploy under another --name ({reason})"
        )
    return EngineError(f"could not start {what} on {where}: {reason}")


def stop(client: docker.DockerClient, name: str) -> list[str]:
    """Stop and remove containers started by shipml from image ``name`` (or named ``name``)."""
    stopped = []
    for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        tags = container.image.tags if container.image else []
        if name in (container.name, container.id[:12], *tags):
            container.remove(force=True)
            stopped.append(container.name)
    return stopped


def remove_container(container: Any) -> None:
    with contextlib.suppress(NotFound):
        container.remove(force=True)


# -- registries ------------------------------------------------------------------------


def docker_config() -> Path:
    """Where Docker keeps registry logins: ``$DOCKER_CONFIG/config.json`` or ``~/.docker``."""
    folder = os.environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def login(client: docker.DockerClient, registry: str, username: str, password: str) -> None:
    """Check the credentials with the registry and keep them where Docker keeps them."""
    try:
        client.login(username=username, password=password, registry=registry, reauth=True)
    except APIError as exc:
        reason = exc.explanation or str(exc)
        if "401" in reason or "unauthorized" in reason.lower():
            raise EngineError(
                f"login to {registry} failed: wrong user name or password ({reason.strip()})"
            ) from None
        raise EngineError(f"login to {registry} failed: {reason}") from None
    path = docker_config()
    config: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    config.setdefault("auths", {})[registry] = {"auth": token}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def push(client: docker.DockerClient, name: str) -> Iterator[dict[str, Any]]:
    """Push ``name``; yields the engine's progress records; raises with a clear message."""
    image(client, name)
    repository, tag = split_name(name)
    registry = repository.split("/", 1)[0]
    try:
        for record in client.images.push(repository, tag=tag, stream=True, decode=True):
            if "error" in record:
                message = record["error"]
                hint = ""
                if any(
                    word in message
                    for word in ("unauthorized", "authentication", "auth credentials")
                ):
                    hint = f"; log in first: shipml login {registry}"
                raise EngineError(f"push of {name} failed: {message}{hint}")
            yield record
    except APIError as exc:
        raise EngineError(f"push of {name} failed: {exc.explanation or exc}") from None


def split_name(name: str) -> tuple[str, str]:
    """``host:5000/team/app:1`` → ``("host:5000/team/app", "1")``; no tag means latest."""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, "latest"
