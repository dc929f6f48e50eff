"""``shipml ci github|azure``: write a pipeline that trains, registers, builds, pushes and
deploys, on push and nightly. Thin: parse, call :mod:`shipml.deploy.ci`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipml.cli.common import command_line
from shipml.cli.deploy import console

if TYPE_CHECKING:
    from shipml.deploy import ci  # on use: see cli/common.py

ci_app = typer.Typer(
    help="Write a CI pipeline: train, register, build, push and deploy, on push and nightly.",
    no_args_is_help=True,
)


def _write_ci(
    vendor: ci.Vendor, out: Path | None, project: Path | None, parameters: dict[str, Any]
) -> None:
    """Write the pipeline; ``parameters`` are the command's own (its ``locals()``)."""
    from shipml.deploy import ci  # on use: see cli/common.py
    from shipml.project import load_project

    options = ci.CiOptions(**{k: v for k, v in parameters.items() if k not in ("out", "project")})
    written = ci.write(vendor, load_project(project), options, out, command_line())
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
    _write_ci("github", out, project, locals())


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
    _write_ci("azure", out, project, locals())
