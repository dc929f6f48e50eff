"""``shipml deploy …``: thin commands, each parsing its options and calling one module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipml.errors import ShipmlError

deploy_app = typer.Typer(
    help="Deploy a serve image: docker (here or over SSH), compose.", no_args_is_help=True
)
console = Console(soft_wrap=True, highlight=False)

ImageArgument = Annotated[
    str | None, typer.Argument(help="A serve image (made by shipml build).", show_default=False)
]
NameOption = Annotated[
    str | None,
    typer.Option(help="Deployment name (default: the image's model name).", show_default=False),
]
BindOption = Annotated[str, typer.Option(help="Host address the balancer publishes on.")]
EnvFileOption = Annotated[
    Path | None, typer.Option(help="KEY=VALUE lines for the replicas.", show_default=False)
]
BalancerOption = Annotated[
    str | None,
    typer.Option(
        help="Base image of the nginx balancer: Debian, Ubuntu or Alpine "
        "(default debian:bookworm-slim).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds new replicas get to become ready.")]
GraceOption = Annotated[int, typer.Option(help="Seconds an old replica gets to drain.")]


def _say(line: str) -> None:
    console.print(f"[dim]{line}[/dim]")


@deploy_app.command("docker")
def docker_command(
    image: ImageArgument = None,
    host: Annotated[
        str | None,
        typer.Option(help="Engine: ssh://user@host[:port] (default: DOCKER_HOST or local)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Published port (default 8080).", show_default=False)
    ] = None,
    replicas: Annotated[int, typer.Option(help="Number of replicas.")] = 1,
    env_file: EnvFileOption = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the replicas.")
    ] = None,
    name: NameOption = None,
    bind: BindOption = "0.0.0.0",
    balancer_base: BalancerOption = None,
    timeout: TimeoutOption = 180,
    grace: GraceOption = 30,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the deployment.")] = False,
) -> None:
    """Run IMAGE behind a balancer on a Docker engine; a redeploy replaces it once ready."""
    from shipml.deploy import balancer
    from shipml.deploy import docker as target
    from shipml.deploy.naming import read_env

    if remove:
        removed = target.remove(name, image, host, grace)
        console.print(f"Removed {', '.join(removed)}")
        return
    if image is None:
        raise ShipmlError("which image? shipml deploy docker IMAGE [--host ssh://user@host]")
    spec = target.DockerDeploy(
        image=image,
        name=name,
        host=host,
        port=port,
        bind=bind,
        env=read_env(env_file, env),
        replicas=replicas,
        balancer_base=balancer_base or balancer.DEFAULT_BASE,
        timeout=timeout,
        grace=grace,
    )
    done = target.deploy(spec, _say)
    replaced = f", replaced {len(done.replaced)}" if done.replaced else ""
    console.print(
        f"[green]Deployed {image}[/green] as {done.name}: {len(done.replicas)} replica(s)"
        f"{replaced}, {done.seconds:.1f}s"
    )
    console.print(f"Ready at {done.url}/")


@deploy_app.command("compose")
def compose_command(
    image: ImageArgument = None,
    replicas: Annotated[int, typer.Option(help="Number of replicas.")] = 2,
    out: Annotated[Path, typer.Option(help="Folder for docker-compose.yml.")] = Path("compose"),
    up: Annotated[
        bool, typer.Option("--up", help="Start it now, or roll out IMAGE to it.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port the balancer publishes.")] = 8080,
    env_file: EnvFileOption = None,
    name: NameOption = None,
    bind: BindOption = "0.0.0.0",
    balancer_base: BalancerOption = None,
    timeout: TimeoutOption = 180,
    grace: GraceOption = 30,
    remove: Annotated[
        bool, typer.Option("--remove", help="docker-compose down for the --out folder.")
    ] = False,
) -> None:
    """Write a Compose file: N replicas of IMAGE behind a balancer; --up rolls it out."""
    from shipml.deploy import balancer, compose

    if image is None and not (remove and name):
        raise ShipmlError("which image? shipml deploy compose IMAGE --replicas N [--up]")
    spec = compose.ComposeDeploy(
        image=image or "",
        replicas=replicas,
        out=out,
        name=name,
        port=port,
        bind=bind,
        env_file=env_file,
        balancer_base=balancer_base or balancer.DEFAULT_BASE,
        timeout=timeout,
        grace=grace,
    )
    if remove:
        from shipml.image import engine

        deployment = name or compose.name_for(spec, engine.connect())
        compose.down(out, deployment)
        console.print(f"Removed {deployment}")
        return
    if not up:
        written = compose.generate(spec)
        console.print(f"Wrote {written.file} ({written.name}, {replicas} replica(s))")
        console.print(
            f"Start it: cd {out} && docker-compose -p {written.name} up -d  "
            "(or add --up to this command)"
        )
        return
    started = compose.up(spec, _say)
    replaced = f", replaced {len(started.replaced)}" if started.replaced else ""
    console.print(
        f"[green]Deployed {image}[/green] as {started.name}: {len(started.replicas)} "
        f"replica(s){replaced}, {started.seconds:.1f}s"
    )
    console.print(f"Ready at {started.url}/  (Compose file: {out / 'docker-compose.yml'})")
