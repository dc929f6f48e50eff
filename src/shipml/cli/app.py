"""The ``shipml`` command line. Thin: each command parses its options and calls one module.

Errors that users can fix (:class:`~shipml.errors.ShipmlError`) print one line saying
what is wrong and what to do, and exit with status 1; never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.status import Status

from shipml import __version__
from shipml.cli.ci import ci_app
from shipml.cli.common import (
    ProjectOption,
    StoreOption,
    console,
    errors,
    open_store,
    options_from,
)
from shipml.cli.deploy import deploy_app
from shipml.cli.models import models_app
from shipml.cli.monitor import monitor_app
from shipml.errors import ShipmlError

app = typer.Typer(
    name="shipml",
    help="From a trained model to a versioned, containerized REST service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_app, name="models")
app.add_typer(deploy_app, name="deploy")
app.add_typer(ci_app, name="ci")
app.add_typer(monitor_app, name="monitor")
OnnxOption = Annotated[
    bool,
    typer.Option(
        "--onnx",
        help="Serve a scikit-learn model through ONNX Runtime, converted and checked against "
        "scikit-learn first (needs: pip install 'shipml[onnx]').",
    ),
]


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the project in.")],
    template: Annotated[str, typer.Option(help="iris, sentiment or blank.")] = "blank",
) -> None:
    """Create a new project: shipml.yaml, train.py, requirements.txt (and score.py)."""
    from shipml.templates import create_project  # on use: see cli/common.py

    files = create_project(folder, template)
    console.print(f"Created {template} project in {folder}: {', '.join(files)}")
    console.print(f"Next: cd {folder} && shipml train")


@app.command()
def train(project: ProjectOption = None, store: StoreOption = None) -> None:
    """Run the project's training script and register the model as a new version."""
    from shipml.project import load_project  # on use: see cli/common.py
    from shipml.train import train_project

    spec = load_project(project)
    target = open_store(store, spec)
    if spec.train is None:
        console.print(f"Registering {spec.name} ({', '.join(spec.model)}) into {target.url}")
    else:
        console.print(f"Training {spec.name} ({spec.train.name}) into {target.url}")
    manifest, digest = train_project(spec, target)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in manifest.metrics.items()) or "no metrics"
    if spec.train is None:
        metrics = "registered without training (no train: in shipml.yaml)"
    console.print(f"[green]Registered {manifest.ref}[/green] ({digest[:19]}…): {metrics}")
    console.print(f"Serve it with: shipml serve {manifest.name}@latest")


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="name, name:N, name@alias or a model file.")],
    store: StoreOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per usable CPU).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="Native threads per worker (default: usable CPUs ÷ workers)."),
    ] = None,
    onnx: OnnxOption = False,
) -> None:
    """Serve a model over HTTP, with its web playground at /."""
    from shipml.serving import launch  # on use: see cli/common.py

    launch.serve(
        model,
        store=store,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        onnx=onnx,
        say=_print,
    )


def _print(line: str) -> None:
    """Plain text, flushed: these lines hold JSON that rich would read as markup."""
    print(line, flush=True)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="name, name:N, name@alias or a model file.")],
    input: Annotated[str, typer.Option("--input", "-i", help="JSON, or @file with JSON.")],
    store: StoreOption = None,
) -> None:
    """Score JSON input with a model, in this process, and print the JSON answer."""
    from shipml.serving.launch import predict_once  # on use: see cli/common.py

    body = Path(input[1:]).read_bytes() if input.startswith("@") else input.encode()
    sys.stdout.write(predict_once(model, body, store) + "\n")


ImageOption = Annotated[str, typer.Option("--tag", "-t", help="Image name, e.g. myreg.io/iris:1.")]


@app.command()
def build(
    model: Annotated[str | None, typer.Argument(help="Model reference (serve image).")] = None,
    tag: ImageOption = "",
    target: Annotated[str, typer.Option(help="serve or train.")] = "serve",
    base_image: Annotated[
        str | None, typer.Option(help="Base image (default python:3.11-slim).")
    ] = None,
    dockerfile_only: Annotated[
        Path | None, typer.Option(help="Write the Dockerfile and context to this folder only.")
    ] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the image after building it.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")] = False,
    extra: Annotated[
        list[str] | None,
        typer.Option(
            "--extra", help="Add to the image: azure (store client), trust (signature checks)."
        ),
    ] = None,
    onnx: OnnxOption = False,
    project: ProjectOption = None,
    store: StoreOption = None,
) -> None:
    """Build a serve image (a model baked in) or a train image, smoke-tested before done."""
    from shipml.image.build import BuildOptions, Built  # on use: see cli/common.py
    from shipml.image.build import build as build_from

    options = options_from(BuildOptions, locals())
    with console.status("Building…") as status:
        result = build_from(options, say=console.print, on_line=_shown_in(status))
    if isinstance(result, Built):
        ready = f", ready in {result.ready_seconds:.1f}s" if result.ready_seconds else ""
        size = f"{result.size / 1e6:.0f} MB, {result.seconds:.0f}s{ready}"
        console.print(f"[green]Built {result.tag}[/green] ({size})")
        if push:
            _push(tag)


def _shown_in(status: Status) -> Callable[[str], None]:
    """The build's output, one line at a time, in the spinner's place."""
    return lambda line: status.update(f"[dim]{line[:100]}[/dim]")


@app.command()
def run(
    image: Annotated[str, typer.Argument(help="A serve image.")],
    port: Annotated[int | None, typer.Option(help="Host port (default: a free one).")] = None,
    host: Annotated[str, typer.Option(help="Host address to publish on.")] = "127.0.0.1",
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the container.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Container name.")] = None,
) -> None:
    """Start a serve image, wait until it is ready, print its URL."""
    from shipml.image import engine  # on use: see cli/common.py

    variables = dict(item.split("=", 1) for item in env or [] if "=" in item)
    client = engine.connect()
    container = engine.run(client, image, port=port, host=host, env=variables, container_name=name)
    url = engine.published_url(container)
    try:
        seconds = engine.wait_ready(container, url)
    except ShipmlError:
        engine.remove_container(container)
        raise
    console.print(f"{image} is ready at {url}/ ({seconds:.1f}s; container {container.name})")
    console.print(f"Stop it with: shipml stop {container.name}")


@app.command()
def stop(
    name: Annotated[str, typer.Argument(help="Container name or image started by shipml run.")],
) -> None:
    """Stop and remove containers that 'shipml run' started."""
    from shipml.image import engine  # on use: see cli/common.py

    stopped = engine.stop(engine.connect(), name)
    if not stopped:
        raise ShipmlError(f"no container started by shipml matches {name!r}")
    console.print(f"Stopped {', '.join(stopped)}")


@app.command()
def login(
    registry: Annotated[str, typer.Argument(help="Registry host, e.g. myreg.azurecr.io.")],
    username: Annotated[str, typer.Option("--username", "-u", help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in to an OCI registry (password from stdin or $SHIPML_REGISTRY_PASSWORD)."""
    from shipml.image import engine  # on use: see cli/common.py

    password = (
        sys.stdin.read().strip()
        if password_stdin
        else os.environ.get("SHIPML_REGISTRY_PASSWORD", "")
    )
    if not password:
        raise ShipmlError(
            "no password: pipe it with --password-stdin or set SHIPML_REGISTRY_PASSWORD"
        )
    engine.login(engine.connect(), registry, username, password)
    console.print(f"Logged in to {registry} as {username}")


@app.command()
def push(
    image: Annotated[str, typer.Argument(help="Image to push, e.g. myreg.io/iris:1.")],
) -> None:
    """Push an image to its registry and print the pushed digest."""
    _push(image)


def _push(image: str) -> None:
    # imported on use: see cli/common.py
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from shipml.image import engine  # on use: see cli/common.py

    client = engine.connect()
    digest = None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=console,
        transient=True,
    ) as progress:
        layers: dict[str, Any] = {}
        for record in engine.push(client, image):
            layer = record.get("id")
            detail = record.get("progressDetail") or {}
            if layer and detail.get("total"):
                if layer not in layers:
                    layers[layer] = progress.add_task(f"layer {layer}", total=detail["total"])
                progress.update(layers[layer], completed=detail.get("current", 0))
            if "aux" in record and "Digest" in record["aux"]:
                digest = record["aux"]["Digest"]
    console.print(f"[green]Pushed {image}[/green] {digest or ''}")


@app.command()
def version() -> None:
    """Print the shipml version."""
    console.print(__version__)


def main() -> None:
    try:
        app()
    except ShipmlError as exc:
        errors.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
