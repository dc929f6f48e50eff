"""The ``shipml`` command line. Thin: each command parses its options and calls one module.

Errors that users can fix (:class:`~shipml.errors.ShipmlError`) print one line saying
what is wrong and what to do, and exit with status 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

from shipml import __version__
from shipml.deploy.ci_commands import ci_app
from shipml.deploy.commands import deploy_app
from shipml.errors import ShipmlError
from shipml.monitoring.commands import monitor_app
from shipml.store import Store
from shipml.store.commands import StoreOption, models_app, open_store

if TYPE_CHECKING:
    from shipml.scoring.convert import Check
    from shipml.store import LocalModel

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
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

ProjectOption = Annotated[
    Path | None, typer.Option("--project", "-p", help="Project folder (default: the nearest one).")
]
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
    from shipml.templates import create_project

    files = create_project(folder, template)
    console.print(f"Created {template} project in {folder}: {', '.join(files)}")
    console.print(f"Next: cd {folder} && shipml train")


@app.command()
def train(project: ProjectOption = None, store: StoreOption = None) -> None:
    """Run the project's training script and register the model as a new version."""
    from shipml.project import load_project
    from shipml.train import store_url, train_project

    spec = load_project(project)
    target = Store(store_url(store, spec))
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
    from shipml.project import find_project, load_project
    from shipml.serving.settings import load_settings
    from shipml.serving.sizing import settle
    from shipml.store import parse_reference

    root = find_project()
    project = load_project(root) if root else None
    ref = parse_reference(model)
    if onnx and ref.path is not None:
        raise ShipmlError(
            "--onnx checks the conversion on the training sample a store version keeps; "
            "register the model with shipml.save_model and serve it by name"
        )
    settings = load_settings(
        project.serve if project else None, host=host, port=port, workers=workers, threads=threads
    )
    # Before anything here imports numpy (--onnx converts in this process): the thread
    # variables must be in place when OpenMP and BLAS first load (serving/sizing.py).
    settings = settle(settings)
    if ref.path is None:
        # Resolve and verify once, here, so a bad reference fails now and every worker
        # serves the same version even if a new one is published meanwhile.
        target = open_store(store)
        local = target.fetch(ref, settings.cache_dir)
        settings = settings.with_overrides(model=local.manifest.ref, store=target.url)
        console.print(f"Serving {local.manifest.ref} ({local.digest[:19]}…) from {target.url}")
        example = local.manifest.example
    else:
        _model_file(ref.path)  # a file that is not a model fails now, not in every worker
        settings = settings.with_overrides(model=str(ref.path))
        example = None
    url = f"http://{settings.host}:{settings.port}"
    record = orjson.dumps(example).decode() if example is not None else "<record>"
    with contextlib.ExitStack() as stack:
        if onnx:
            from shipml.scoring.convert import onnx_version

            converted, check = stack.enter_context(onnx_version(local, target))
            settings = settings.with_overrides(model="", model_dir=converted.folder)
            console.print(_checked(check))
        print(f"Playground: {url}/   API docs: {url}/docs")
        print(f"Try: curl -X POST {url}/predict -H 'Content-Type: application/json' -d '{record}'")
        sys.stdout.flush()
        _serve_or_explain(settings, stack)


def _serve_or_explain(settings: Any, stack: contextlib.ExitStack) -> None:
    """Serve; if the model's own code cannot load, stop with its error on one line.

    A worker whose score.py fails in import or init() writes the error to the file named
    by ``SHIPML_LOAD_ERROR_FILE`` and exits with gunicorn's boot-error status, which
    stops the server (its traceback is in the log above).
    """
    from shipml.serving.server import run_server

    try:
        report = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "load-error"
    except OSError as exc:  # a read-only or full /tmp: say so, not a traceback
        raise ShipmlError(
            f"cannot create a temporary folder in {tempfile.gettempdir()}: {exc.strerror}; "
            "set TMPDIR to a writable folder"
        ) from None
    os.environ["SHIPML_LOAD_ERROR_FILE"] = str(report)
    try:
        run_server(settings)
    except SystemExit:
        if report.is_file():
            raise ShipmlError(
                f"the model could not be loaded (traceback above): {report.read_text()}"
            ) from None
        raise


def _model_file(path: Path) -> LocalModel:
    """Load a bare model file here, so one that is not a model is one line, at once."""
    from shipml import flavours
    from shipml.flavours.base import PICKLE_SUFFIXES
    from shipml.scoring import model_from_file

    own = sorted({suffix for flavour in flavours.REGISTRY for suffix in flavour.file_suffixes})
    what = (
        "a model file is a fitted model saved with joblib.dump or pickle (.joblib, .pkl, "
        f".pickle), skops (.skops) or a format a flavour reads ({', '.join(own)}); a model "
        "in the store is named NAME, NAME:N or NAME@ALIAS"
    )
    if path.suffix not in (*PICKLE_SUFFIXES, *own):
        raise ShipmlError(f"{path} is not a model file: {what}")
    try:
        return model_from_file(path)
    except ShipmlError:
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ShipmlError(
            f"{path} is not a model file shipml can load ({type(exc).__name__}: {reason}); {what}"
        ) from None


def _checked(check: Check) -> str:
    return (
        f"ONNX Runtime: converted and checked on {check.rows} rows (largest difference from "
        f"scikit-learn {check.largest_difference:.2g}, tolerance {check.tolerance:g})"
    )


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="name, name:N, name@alias or a model file.")],
    input: Annotated[str, typer.Option("--input", "-i", help="JSON, or @file with JSON.")],
    store: StoreOption = None,
) -> None:
    """Score JSON input with a model, in this process, and print the JSON answer."""
    from shipml.scoring.azureml import ScoreCall
    from shipml.serving.metrics import Metrics
    from shipml.serving.service import Service
    from shipml.store import parse_reference

    body = Path(input[1:]).read_bytes() if input.startswith("@") else input.encode()
    ref = parse_reference(model)
    path = ref.path
    if path is not None:
        service = Service(lambda: _model_file(path), Metrics())
    else:
        target = open_store(store)
        service = Service(lambda: target.fetch(ref), Metrics())
    service.load_now()
    if service.scorer is not None and service.scorer.contract == "azureml":
        # run() takes the body as it is (not necessarily JSON) and writes its own answer
        call = ScoreCall("POST", "/score", b"", [(b"content-type", b"application/json")], body)
        answer = asyncio.run(service.score(call, "cli"))
        sys.stdout.write(answer.body.decode("utf-8", "replace") + "\n")
        return
    result = asyncio.run(service.predict(body, "cli"))
    options = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    sys.stdout.write(orjson.dumps(result, option=options).decode() + "\n")


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
    from shipml.image.build import Built, build_image
    from shipml.image.dockerfile import DEFAULT_BASE
    from shipml.project import find_project, load_project
    from shipml.store import parse_reference

    root = project or find_project()
    spec = load_project(root) if root else None
    if not tag:
        raise ShipmlError("give the image a name: --tag NAME[:TAG]")
    base = base_image or (spec.image.get("base") if spec else None) or DEFAULT_BASE
    local = None
    stack = contextlib.ExitStack()
    if target == "serve":
        reference = model or (f"{spec.name}@latest" if spec else None)
        if reference is None:
            raise ShipmlError("which model? shipml build NAME@ALIAS --tag IMAGE")
        source = open_store(store)
        local = source.fetch(parse_reference(reference))
        if onnx:
            from shipml.scoring.convert import onnx_version

            local, check = stack.enter_context(onnx_version(local, source))
            console.print(_checked(check))
    elif onnx:
        raise ShipmlError("--onnx is for serve images: a train image runs the training code")
    with stack, console.status("Building…") as status:
        result = build_image(
            tag=tag,
            target=target,
            local=local,
            project=spec,
            base=base,
            dockerfile_only=dockerfile_only,
            no_cache=no_cache,
            extras=extra or [],
            onnx=onnx,
            say=console.print,
            on_line=lambda line: status.update(f"[dim]{line[:100]}[/dim]"),
        )
    if isinstance(result, Built):
        ready = f", ready in {result.ready_seconds:.1f}s" if result.ready_seconds else ""
        console.print(
            f"[green]Built {result.tag}[/green] ({result.size / 1e6:.0f} MB, "
            f"{result.seconds:.0f}s{ready})"
        )
        if push:
            _push(tag)


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
    from shipml.image import engine

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
    from shipml.image import engine

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
    from shipml.image import engine

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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from shipml.image import engine

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
