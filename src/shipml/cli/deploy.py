"""``shipml deploy …``: thin commands, each parsing its options and calling one module.

Runtime targets (``docker``, ``compose``) start containers and wait until they serve;
generated targets (``kubernetes``, ``aci``) write files for another system to apply.
Registered on the main app in :mod:`shipml.cli`; the modules are imported inside the
commands so ``shipml --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from shipml.cli.common import command_line, options_from

if TYPE_CHECKING:
    from shipml.deploy.image_facts import ImageFacts
    from shipml.deploy.targets.compose import Started, Written  # on use: see cli/common.py
    from shipml.deploy.targets.docker import Deployed

deploy_app = typer.Typer(
    help="Deploy a serve image: docker (here or over SSH), compose, kubernetes, aci.",
    no_args_is_help=True,
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
    from shipml.deploy.targets import docker as target  # on use: see cli/common.py

    options = options_from(target.Options, locals())
    if remove:
        console.print(f"Removed {', '.join(target.remove(options))}")
        return
    done = target.apply(target.check(options), _say)
    _deployed(options.image, done)
    console.print(f"Ready at {done.url}/")


def _wrote_compose(written: Written, out: Path, replicas: int) -> None:
    console.print(f"Wrote {written.file} ({written.name}, {replicas} replica(s))")
    start = f"cd {out} && docker-compose -p {written.name} up -d"
    console.print(f"Start it: {start}  (or add --up to this command)")


def _deployed(image: str | None, done: Deployed | Started) -> None:
    replaced = f", replaced {len(done.replaced)}" if done.replaced else ""
    console.print(
        f"[green]Deployed {image}[/green] as {done.name}: {len(done.replicas)} replica(s)"
        f"{replaced}, {done.seconds:.1f}s"
    )


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
    from shipml.deploy.targets import compose  # on use: see cli/common.py

    options = options_from(compose.Options, locals())
    if remove:
        console.print(f"Removed {compose.remove(options)}")
        return
    spec = compose.check(options)
    if not up:
        _wrote_compose(compose.generate(spec), out, replicas)
        return
    started = compose.apply(spec, _say)
    _deployed(image, started)
    console.print(f"Ready at {started.url}/  (Compose file: {out / 'docker-compose.yml'})")


# -- generated targets ----------------------------------------------------------------

Image = Annotated[str, typer.Argument(help="The serve image, e.g. myreg.azurecr.io/iris:3.")]
ModelName = Annotated[str | None, typer.Option(help="Model name (default: the image's label).")]
ModelVersion = Annotated[
    str | None, typer.Option(help="Model version (default: the image's label).")
]
Port = Annotated[int | None, typer.Option(help="Container port (default: the image's, 8000).")]
Workers = Annotated[int | None, typer.Option(help="Worker processes per container.")]
Store = Annotated[
    str | None,
    typer.Option(help="Fetch the model from this store at start (with --model), e.g. az://models."),
]
Model = Annotated[
    str | None, typer.Option(help="The model to fetch from --store, e.g. iris@production.")
]


@deploy_app.command("kubernetes")
def kubernetes(
    image: Image,
    out: Annotated[Path, typer.Option(help="Folder to write the manifests into.")],
    apply: Annotated[bool, typer.Option("--apply", help="kubectl apply -k the folder.")] = False,
    context: Annotated[str | None, typer.Option(help="kubectl context for --apply.")] = None,
    name: Annotated[str | None, typer.Option(help="Resource name (default: model).")] = None,
    namespace: Annotated[str | None, typer.Option(help="Namespace.")] = None,
    model_name: ModelName = None,
    model_version: ModelVersion = None,
    port: Port = None,
    replicas: Annotated[int, typer.Option(help="Pods (the autoscaler's minimum).")] = 2,
    max_replicas: Annotated[
        int | None, typer.Option(help="Autoscaler maximum (default: max(5, replicas)).")
    ] = None,
    autoscale: Annotated[
        bool, typer.Option(help="A HorizontalPodAutoscaler on CPU (else fixed replicas).")
    ] = True,
    cpu_target: Annotated[int, typer.Option(help="Autoscaler CPU target, % of request.")] = 70,
    cpu: Annotated[str, typer.Option(help="CPU request.")] = "500m",
    memory: Annotated[str, typer.Option(help="Memory request.")] = "512Mi",
    cpu_limit: Annotated[str, typer.Option(help="CPU limit.")] = "1",
    memory_limit: Annotated[str, typer.Option(help="Memory limit.")] = "1Gi",
    tmp_size: Annotated[str, typer.Option(help="Size of the writable /tmp.")] = "512Mi",
    workers: Workers = None,
    graceful_timeout: Annotated[
        int, typer.Option(help="Seconds the server drains requests on shutdown.")
    ] = 20,
    host: Annotated[str | None, typer.Option(help="Add an Ingress for this host.")] = None,
    ingress_class: Annotated[str | None, typer.Option(help="Ingress class name.")] = None,
    tls_secret: Annotated[str | None, typer.Option(help="TLS Secret for the Ingress.")] = None,
    api_keys_secret: Annotated[
        str | None, typer.Option(help="Secret with key 'api-keys' (one API key per line).")
    ] = None,
    store: Store = None,
    model: Model = None,
    store_secret: Annotated[
        str | None, typer.Option(help="Secret holding the store's credential variables.")
    ] = None,
    pull_secret: Annotated[
        str | None, typer.Option(help="Secret for pulling from a private registry.")
    ] = None,
    service_monitor: Annotated[
        bool,
        typer.Option(
            "--service-monitor", help="Add a Prometheus Operator ServiceMonitor for /metrics."
        ),
    ] = False,
    scrape_interval: Annotated[str, typer.Option(help="The ServiceMonitor's interval.")] = "30s",
    monitor: Annotated[
        bool, typer.Option("--monitor", help="Log requests into a store (SHIPML_MONITOR).")
    ] = False,
    monitor_store: Annotated[
        str | None, typer.Option(help="Store the log goes to (default: --store).")
    ] = None,
) -> None:
    """Write Kubernetes manifests (Deployment, Service, HPA, PDB, Ingress, kustomization)."""
    from shipml.deploy.targets import kubernetes as k8s  # on use: see cli/common.py

    options = options_from(k8s.Options, locals())
    facts = _facts(locals())
    _wrote_folder(out, *k8s.write(facts, options, out, command_line()))
    _lines(
        "The manifests reference these Secrets; create them first:",
        k8s.secret_commands(facts, options),
    )
    if apply:
        console.print(k8s.apply(out, context) or "applied")
    else:
        console.print(f"Apply with: {' '.join(k8s.apply_command(out, context))}")


def _wrote_folder(out: Path, written: list[str], removed: list[str]) -> None:
    console.print(f"Wrote {len(written)} files to {out}: {', '.join(written)}")
    if removed:
        console.print(f"Removed files shipml no longer generates: {', '.join(removed)}")


def _facts(parameters: dict[str, Any]) -> ImageFacts:
    """What the image's labels say, overridden by the options of the same meaning."""
    from shipml.deploy.image_facts import image_facts  # on use: see cli/common.py

    return image_facts(
        parameters["image"],
        model_name=parameters["model_name"],
        model_version=parameters["model_version"],
        port=parameters["port"],
        serve_model=parameters["model"],
    )


def _lines(title: str, lines: list[str]) -> None:
    if lines:
        console.print(title)
        for line in lines:
            console.print(f"  {line}")


@deploy_app.command("aci")
def aci(
    image: Image,
    resource_group: Annotated[str, typer.Option(help="Azure resource group.")],
    name: Annotated[str, typer.Option(help="Container group name.")],
    out: Annotated[
        Path | None, typer.Option(help="YAML file to write (default: aci-NAME.yaml).")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Run az container create (secrets from env).")
    ] = False,
    location: Annotated[str | None, typer.Option(help="Azure region (default: RG's).")] = None,
    cpu: Annotated[float, typer.Option(help="CPU cores.")] = 1.0,
    memory: Annotated[float, typer.Option(help="Memory in GB.")] = 1.5,
    dns_label: Annotated[str | None, typer.Option(help="Public DNS name label.")] = None,
    model_name: ModelName = None,
    model_version: ModelVersion = None,
    port: Port = None,
    workers: Workers = None,
    api_keys: Annotated[
        bool, typer.Option("--api-keys", help="Require API keys ($SHIPML_API_KEYS at deploy).")
    ] = False,
    store: Store = None,
    model: Model = None,
    registry_credentials: Annotated[
        bool | None,
        typer.Option(help="Registry login for the pull (default: when the image names one)."),
    ] = None,
) -> None:
    """Write an Azure Container Instances container group YAML and the az line for it."""
    from shipml.deploy.targets import aci as azure  # on use: see cli/common.py

    options = azure.check(options_from(azure.Options, locals()))
    facts = _facts(locals())
    target = out or Path(f"aci-{name}.yaml")
    lines = azure.write(facts, options, target, command_line())
    console.print(f"Wrote {target}")
    if apply:
        console.print(azure.apply(target, resource_group) or "created")
    else:
        _lines("Deploy it (secret values come from the environment, never the file):", lines)
