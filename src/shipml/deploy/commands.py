"""``shipml deploy kubernetes|aci`` and ``shipml ci github|azure``: parse, call one module.

Registered on the main app in :mod:`shipml.cli`. The modules are imported inside the
commands so ``shipml --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shipml.deploy import ci

console = Console(soft_wrap=True, highlight=False)

deploy_app = typer.Typer(
    help="Deploy a serve image: write the files for a target, and apply them if asked.",
    no_args_is_help=True,
)
ci_app = typer.Typer(
    help="Write a CI pipeline: train, register, build, push and deploy, on push and nightly.",
    no_args_is_help=True,
)

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


def _command() -> list[str]:
    return ["shipml", *sys.argv[1:]]


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
) -> None:
    """Write Kubernetes manifests (Deployment, Service, HPA, PDB, Ingress, kustomization)."""
    from shipml.deploy import kubectl
    from shipml.deploy import kubernetes as k8s
    from shipml.deploy.image_facts import image_facts

    options = k8s.KubernetesOptions(
        name=name,
        namespace=namespace,
        replicas=replicas,
        max_replicas=max_replicas,
        autoscale=autoscale,
        cpu_target=cpu_target,
        cpu=cpu,
        memory=memory,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        tmp_size=tmp_size,
        workers=workers,
        graceful_timeout=graceful_timeout,
        host=host,
        ingress_class=ingress_class,
        tls_secret=tls_secret,
        api_keys_secret=api_keys_secret,
        store=store,
        model=model,
        store_secret=store_secret,
        pull_secret=pull_secret,
    )
    facts = image_facts(
        image, model_name=model_name, model_version=model_version, port=port, serve_model=model
    )
    written, removed = k8s.write(facts, options, out, _command())
    console.print(f"Wrote {len(written)} files to {out}: {', '.join(written)}")
    if removed:
        console.print(f"Removed files shipml no longer generates: {', '.join(removed)}")
    commands = kubectl.secret_commands(facts, options)
    if commands:
        console.print("The manifests reference these Secrets; create them first:")
        for line in commands:
            console.print(f"  {line}")
    if apply:
        console.print(kubectl.apply(out, context) or "applied")
    else:
        console.print(f"Apply with: {' '.join(kubectl.apply_command(out, context))}")


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
    from shipml.deploy import aci as azure
    from shipml.deploy.image_facts import image_facts

    options = azure.AciOptions(
        resource_group=resource_group,
        name=name,
        location=location,
        cpu=cpu,
        memory_gb=memory,
        dns_label=dns_label,
        workers=workers,
        api_keys=api_keys,
        store=store,
        model=model,
        registry_credentials=registry_credentials,
    )
    options.check()
    facts = image_facts(
        image, model_name=model_name, model_version=model_version, port=port, serve_model=model
    )
    target = out or Path(f"aci-{name}.yaml")
    lines = azure.write(facts, options, target, _command())
    console.print(f"Wrote {target}")
    if apply:
        console.print(azure.apply(target, resource_group) or "created")
    else:
        console.print("Deploy it (secret values come from the environment, never the file):")
        for line in lines:
            console.print(f"  {line}")


def _write_ci(
    vendor: ci.Vendor, options: ci.CiOptions, out: Path | None, project: Path | None
) -> None:
    from shipml.deploy import ci
    from shipml.project import load_project

    written = ci.write(vendor, load_project(project), options, out, _command())
    console.print(
        f"Wrote {written}: train -> register -> build -> push -> deploy to {options.target}"
    )
    console.print(
        f"Runs on push to {options.branch}, on demand, and on the schedule "
        f"'{options.schedule}' (UTC)."
    )


Registry = Annotated[str, typer.Option(help="Registry host, e.g. myreg.azurecr.io.")]
CiStore = Annotated[str, typer.Option(help="Remote model store, e.g. az://models.")]
Target = Annotated[str, typer.Option(help="kubernetes, aci or docker.")]
ImageName = Annotated[
    str | None, typer.Option(help="Repository under the registry (default: project name).")
]
Branch = Annotated[str, typer.Option(help="Branch whose pushes run it.")]
Schedule = Annotated[str, typer.Option(help="Cron line for the nightly run (UTC).")]
Namespace = Annotated[str | None, typer.Option(help="Kubernetes namespace.")]
PullSecret = Annotated[str | None, typer.Option(help="Kubernetes image pull Secret.")]
ResourceGroup = Annotated[str | None, typer.Option(help="ACI resource group.")]
AciName = Annotated[str | None, typer.Option(help="ACI container group name.")]
Out = Annotated[Path | None, typer.Option(help="File to write (default: at the repo's top).")]
ProjectDir = Annotated[
    Path | None, typer.Option("--project", "-p", help="Project folder (default: nearest).")
]


@ci_app.command("github")
def github(
    registry: Registry,
    store: CiStore,
    target: Target = "kubernetes",
    image_name: ImageName = None,
    branch: Branch = "main",
    schedule: Schedule = "0 3 * * *",
    namespace: Namespace = None,
    pull_secret: PullSecret = None,
    resource_group: ResourceGroup = None,
    aci_name: AciName = None,
    out: Out = None,
    project: ProjectDir = None,
) -> None:
    """Write a GitHub Actions workflow (.github/workflows/shipml.yml)."""
    from shipml.deploy.ci import CiOptions

    options = CiOptions(
        registry=registry,
        store=store,
        target=target,
        image_name=image_name,
        branch=branch,
        schedule=schedule,
        namespace=namespace,
        pull_secret=pull_secret,
        resource_group=resource_group,
        aci_name=aci_name,
    )
    _write_ci("github", options, out, project)


@ci_app.command("azure")
def azure_pipelines(
    registry: Registry,
    store: CiStore,
    target: Target = "kubernetes",
    image_name: ImageName = None,
    branch: Branch = "main",
    schedule: Schedule = "0 3 * * *",
    namespace: Namespace = None,
    pull_secret: PullSecret = None,
    resource_group: ResourceGroup = None,
    aci_name: AciName = None,
    variable_group: Annotated[
        str, typer.Option(help="Variable group holding the secrets.")
    ] = "shipml",
    service_connection: Annotated[
        str, typer.Option(help="Azure service connection (target aci).")
    ] = "shipml-azure",
    out: Out = None,
    project: ProjectDir = None,
) -> None:
    """Write an Azure Pipelines file (azure-pipelines.yml)."""
    from shipml.deploy.ci import CiOptions

    options = CiOptions(
        registry=registry,
        store=store,
        target=target,
        image_name=image_name,
        branch=branch,
        schedule=schedule,
        namespace=namespace,
        pull_secret=pull_secret,
        resource_group=resource_group,
        aci_name=aci_name,
        variable_group=variable_group,
        service_connection=service_connection,
    )
    _write_ci("azure", options, out, project)
