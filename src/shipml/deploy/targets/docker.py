"""``shipml deploy docker``: a serve image on one Docker engine, here or over SSH.

What a deployment ``NAME`` is on the engine (all labelled ``io.shipml.deploy=NAME``):

- the network ``NAME``, private to the deployment;
- ``NAME-balancer``: nginx publishing ``--bind:--port`` (see :mod:`shipml.deploy.balancer`);
- ``NAME-model-G-I``: replica I of generation G, on the network with the alias ``model``.

The balancer is there even for one replica, because Docker cannot move a published port
from one container to another: with the port on the balancer, a redeploy starts the
new generation beside the old, waits until it is ready, and only then drains the old
(:mod:`shipml.deploy.rollout`), so clients see no gap, and a new image that never becomes ready
leaves the old one serving. The same design as Kamal's proxy, for the same reason.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
from docker.errors import APIError, NotFound

from shipml.deploy import balancer, naming, rollout
from shipml.deploy.naming import DeployError
from shipml.errors import ShipmlError
from shipml.image import engine

TARGET = "docker"
DEFAULT_PORT = 8080
RESTART = {"Name": "unless-stopped"}


@dataclass(frozen=True)
class Options:
    """What the user asked for, as typed: every field is a command-line option."""

    image: str | None = None
    name: str | None = None
    host: str | None = None
    port: int | None = None
    bind: str = "0.0.0.0"
    env_file: Path | None = None
    env: list[str] | None = None  # KEY=VALUE
    replicas: int = 1
    balancer_base: str | None = None
    timeout: float = 180
    grace: int = 30


@dataclass(frozen=True)
class Resolved:
    """A deployment to make: the options checked, defaults and env file filled in."""

    image: str
    name: str | None = None
    host: str | None = None  # ssh://user@host[:port], tcp://…; None: DOCKER_HOST or local
    port: int | None = None  # published port; None: the deployment's current one, or 8080
    bind: str = "0.0.0.0"
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    balancer_base: str = balancer.DEFAULT_BASE
    timeout: float = 180  # seconds the new replicas get to become ready
    grace: int = 30  # seconds an old replica gets to finish its requests


@dataclass(frozen=True)
class Deployed:
    name: str
    url: str
    replicas: list[str]
    replaced: list[str]
    seconds: float


def check(options: Options) -> Resolved:
    """The deployment ``options`` ask for; raises on the first thing missing or wrong."""
    if options.image is None:
        raise DeployError("which image? shipml deploy docker IMAGE [--host ssh://user@host]")
    return Resolved(
        image=options.image,
        name=options.name,
        host=options.host,
        port=options.port,
        bind=options.bind,
        env=naming.read_env(options.env_file, options.env),
        replicas=options.replicas,
        balancer_base=options.balancer_base or balancer.DEFAULT_BASE,
        timeout=options.timeout,
        grace=options.grace,
    )


def where(host: str | None) -> str:
    return host or "this machine"


def apply(spec: Resolved, say: Callable[[str], None]) -> Deployed:
    """Deploy (or redeploy) ``spec.image``; returns once the new replicas serve."""
    if spec.replicas < 1:
        raise DeployError("--replicas must be at least 1")
    started = time.monotonic()
    client = engine.connect(spec.host)
    place = where(spec.host)
    image = engine.ensure_image(client, spec.image, place)
    name = naming.deployment_name(spec.name, spec.image, image.labels)
    old = client.containers.list(all=True, filters=naming.selector(name, TARGET, "model"))
    network = _network(client, name)
    front = _balancer(client, name)
    port = _port(front, spec.port)
    created_front = front is None
    if front is None:
        say(f"Starting the balancer of {name} on {place}, port {port}")
        tag = balancer.ensure_image(client, spec.balancer_base, lambda line: None)
        front = _start_balancer(
            client, name, tag=tag, bind=spec.bind, port=port, place=place, net=network
        )
    generation = 1 + max((_generation(c) for c in old), default=0)
    say(f"Starting {spec.replicas} replica(s) of {spec.image} (generation {generation})")
    new: list[Any] = []
    try:
        for index in range(1, spec.replicas + 1):
            new.append(
                _start_replica(client, spec, name, generation=generation, index=index, place=place)
            )
        rollout.wait_ready(new, spec.timeout, say)
    except ShipmlError as exc:
        rollout.discard(new)
        if created_front:
            rollout.discard([front])
            with contextlib.suppress(NotFound, APIError):
                network.remove()
        raise rollout.failed(exc, old) from None
    replaced = rollout.drain(old, spec.grace, say)
    try:
        engine.wait_healthy(front, timeout=60)
    except ShipmlError as exc:
        raise DeployError(f"the replicas are ready but the balancer is not: {exc}") from None
    return Deployed(
        name=name,
        url=_url(spec.host, spec.bind, port),
        replicas=[c.name for c in new],
        replaced=replaced,
        seconds=time.monotonic() - started,
    )


def remove(options: Options) -> list[str]:
    """Drain and remove every part of a deployment; returns what was removed."""
    name, image, host = options.name, options.image, options.host
    client = engine.connect(host)
    labels = None
    if name is None:
        if image is None:
            raise DeployError("which deployment? give the IMAGE or --name")
        with contextlib.suppress(NotFound, APIError):
            labels = client.images.get(image).labels
    name = naming.deployment_name(name, image or "", labels)
    parts = client.containers.list(all=True, filters=naming.selector(name, TARGET))
    # The balancer goes first, so no request is sent to a replica that is stopping.
    parts.sort(key=lambda c: c.labels.get(naming.ROLE) != "balancer")
    removed = rollout.drain(parts, options.grace, lambda _: None)
    for network in client.networks.list(filters=naming.selector(name, TARGET)):
        network.remove()
        removed.append(f"network {network.name}")
    if not removed:
        raise DeployError(f"no deployment named {name!r} on {where(host)}")
    return removed


def _network(client: docker.DockerClient, name: str) -> Any:
    found = client.networks.list(filters=naming.selector(name, TARGET, "network"))
    if found:
        return found[0]
    try:
        return client.networks.create(
            name, driver="bridge", labels=naming.labels(name, TARGET, "network")
        )
    except APIError as exc:
        raise DeployError(
            f"cannot create the network {name}: {exc.explanation or exc}; if a network of "
            "that name exists and is not shipml's, deploy under another --name"
        ) from None


def _balancer(client: docker.DockerClient, name: str) -> Any | None:
    found = client.containers.list(all=True, filters=naming.selector(name, TARGET, "balancer"))
    if not found:
        return None
    front = found[0]
    if front.status != "running":
        front.start()
    return front


def _port(front: Any | None, wanted: int | None) -> int:
    if front is None:
        return wanted or DEFAULT_PORT
    bindings = front.attrs["HostConfig"]["PortBindings"][f"{balancer.PORT}/tcp"]
    current = int(bindings[0]["HostPort"])
    if wanted is not None and wanted != current:
        raise DeployError(
            f"this deployment already listens on port {current}; to move it, remove it "
            f"first (shipml deploy docker --remove --name …) and deploy with --port {wanted}"
        )
    return current


def _start_balancer(
    client: docker.DockerClient, name: str, *, tag: str, bind: str, port: int, place: str, net: Any
) -> Any:
    try:
        return client.containers.run(
            tag,
            detach=True,
            name=f"{name}-balancer",
            network=net.name,
            ports={f"{balancer.PORT}/tcp": (bind, port)},
            labels=naming.labels(name, TARGET, "balancer"),
            restart_policy=RESTART,
        )
    except APIError as exc:
        leftover = client.containers.list(all=True, filters={"name": f"^{name}-balancer$"})
        if leftover and leftover[0].labels.get(naming.DEPLOY) == name:
            leftover[0].remove(force=True)
        with contextlib.suppress(APIError):
            net.remove()
        raise engine.start_error(exc, f"{name}-balancer", port, place) from None


def _start_replica(
    client: docker.DockerClient,
    spec: Resolved,
    name: str,
    *,
    generation: int,
    index: int,
    place: str,
) -> Any:
    container_name = f"{name}-model-{generation}-{index}"
    try:
        container = client.containers.create(
            spec.image,
            name=container_name,
            environment=spec.env,
            labels=naming.labels(name, TARGET, "model", **{naming.GENERATION: str(generation)}),
            restart_policy=RESTART,
            network=name,
            networking_config={name: client.api.create_endpoint_config(aliases=["model"])},
        )
        container.start()
    except APIError as exc:
        raise engine.start_error(exc, container_name, None, place) from None
    return container


def _generation(container: Any) -> int:
    try:
        return int(container.labels.get(naming.GENERATION, "0"))
    except ValueError:
        return 0


def _url(host: str | None, bind: str, port: int) -> str:
    if host and host.startswith(("ssh://", "tcp://")):
        address = urlsplit(host).hostname or "localhost"
    elif bind in ("0.0.0.0", "::", ""):
        address = "127.0.0.1"
    else:
        address = bind
    return f"http://{address}:{port}"
