"""``shipml build``: a model version (or a project) becomes a tested OCI image.

Steps: work out the packages, download their wheels for the base image's platform,
check the model's framework version against them, lay out the context, render the
Dockerfile, build through the engine and, for a serve image, smoke-test it: a container
must start, become ready and answer the model's own example before the build is done.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from docker import DockerClient

from shipml import __version__
from shipml.errors import ShipmlError
from shipml.image import engine
from shipml.image.context import (
    BuildError,
    Platform,
    cache_root,
    copy_runtime,
    copy_wheels,
    locked_version,
    wheelhouse,
)
from shipml.image.dockerfile import DEFAULT_BASE, ImageSpec, render
from shipml.image.requirements import (
    environment_requirements,
    extra_requirements,
    image_requirements,
    no_deps_packages,
    onnx_requirements,
    pinned_packages,
    runtime_requirements,
    system_packages,
)
from shipml.project import Project, find_project, load_project, store_url_here
from shipml.scoring.azureml import check_script
from shipml.scoring.onnx import ENGINE, is_converted
from shipml.source import git_source
from shipml.store import LocalModel, Store, parse_reference
from shipml.store.cache import copy_folder
from shipml.store.paths import inside

Say = Callable[[str], None]
PROJECT_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.pyc", ".shipml", "node_modules", ".mypy_cache"
)


@dataclass(frozen=True)
class Built:
    tag: str
    image_id: str
    size: int
    seconds: float
    ready_seconds: float | None = None


def platform_of(client: DockerClient, base: str) -> Platform:
    """Python version, glibc and architecture of ``base`` (cached by image id)."""
    base_image = engine.image(client, base)
    cache = cache_root() / "platforms.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if base_image.id not in known:
        probe = (
            "import json, platform, sys; print(json.dumps([f'{sys.version_info[0]}."
            "{sys.version_info[1]}', platform.libc_ver()[1], platform.machine()]))"
        )
        output = client.containers.run(base, ["python3", "-c", probe], remove=True)
        known[base_image.id] = json.loads(output)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    python, glibc, machine = known[base_image.id]
    if not glibc:
        raise BuildError(
            f"{base} does not use glibc; shipml images need a glibc base (Debian, Ubuntu, UBI)"
        )
    return Platform(python=python, glibc=glibc, machine=machine)


def serve_context(
    local: LocalModel,
    folder: Path,
    base: str,
    client: DockerClient,
    *,
    environment: Path | None,
    extras: list[str],
    say: Say,
    onnx: bool = False,
) -> ImageSpec:
    manifest = local.manifest
    if onnx and not is_converted(local.folder):
        raise BuildError(f"{local.folder} holds no checked ONNX conversion of {manifest.ref}")
    # An ONNX image runs the graph alone: the model's framework is not installed in it.
    script = None
    if manifest.contract == "azureml" and manifest.scoring.get("script"):
        script = inside(local.folder, manifest.scoring["script"])
        check_script(script, manifest.files)
    packages = onnx_requirements() if onnx else image_requirements(manifest, environment, script)
    requirements = packages + extra_requirements(extras)
    say(f"Resolving {len(requirements)} requirements for {base}")
    platform = platform_of(client, base)
    wheels = wheelhouse(requirements, platform, no_deps=[] if onnx else no_deps_packages(manifest))
    for library, trained in ({} if onnx else pinned_packages(manifest)).items():
        packaged = locked_version(wheels / "requirements.lock", library)
        if packaged is not None and packaged != trained:
            raise BuildError(
                f"{manifest.ref} was trained with {library}=={trained} but the image would "
                f"install {library}=={packaged}. Pin {library}=={trained} in the "
                "environment file, or retrain the model with the version you want to ship."
            )
    copy_wheels(wheels, folder / "wheels")
    copy_runtime(folder / "runtime")
    copy_folder(local, folder / "model")  # the store's path rule; links never followed
    labels = {
        "org.opencontainers.image.title": manifest.name,
        "org.opencontainers.image.version": str(manifest.version),
        "org.opencontainers.image.description": f"{manifest.ref} served by shipml {__version__}",
        "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "io.shipml.target": "serve",
        "io.shipml.version": __version__,
        "io.shipml.model.name": manifest.name,
        "io.shipml.model.version": str(manifest.version),
        "io.shipml.model.ref": manifest.ref,
        "io.shipml.model.digest": local.digest,
        "io.shipml.model.input-schema": json.dumps(manifest.input_schema, separators=(",", ":")),
    }
    if manifest.source.get("commit"):
        labels["org.opencontainers.image.revision"] = str(manifest.source["commit"])
    if onnx:
        labels["io.shipml.engine"] = ENGINE
    system = () if onnx else tuple(system_packages(manifest))
    return ImageSpec("serve", base=base, labels=labels, system=system)


def train_context(
    project: Project, folder: Path, base: str, client: DockerClient, *, extras: list[str], say: Say
) -> ImageSpec:
    own = environment_requirements(project.environment) if project.environment else []
    requirements = own + runtime_requirements() + extra_requirements(extras)
    say(f"Resolving {len(requirements)} requirements for {base}")
    wheels = wheelhouse(requirements, platform_of(client, base))
    copy_wheels(wheels, folder / "wheels")
    copy_runtime(folder / "runtime")
    shutil.copytree(project.root, folder / "project", ignore=PROJECT_IGNORE)
    env = {}
    commit = git_source(project.root).get("commit")
    if commit:
        env["SHIPML_SOURCE_COMMIT"] = str(commit)
    labels = {
        "org.opencontainers.image.title": f"{project.name}-train",
        "org.opencontainers.image.description": f"trains {project.name} with shipml {__version__}",
        "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "io.shipml.target": "train",
        "io.shipml.version": __version__,
        "io.shipml.model.name": project.name,
    }
    return ImageSpec("train", base=base, labels=labels, env=env)


@dataclass(frozen=True)
class BuildOptions:
    """What ``shipml build`` was asked for (its options, by their names)."""

    tag: str
    model: str | None = None
    target: str = "serve"
    base_image: str | None = None
    dockerfile_only: Path | None = None
    no_cache: bool = False
    extra: list[str] | None = None
    onnx: bool = False
    project: Path | None = None
    store: str | None = None


def build(
    options: BuildOptions, say: Say = print, on_line: Callable[[str], None] = lambda line: None
) -> Built | Path:
    """``shipml build``: find the project, the base and the model version the user means
    (``model``, else the project's latest), then :func:`build_image`."""
    root = options.project or find_project()
    project = load_project(root) if root else None
    if not options.tag:
        raise ShipmlError("give the image a name: --tag NAME[:TAG]")
    _check_target(options.target, options.onnx)
    base = options.base_image or (project.image.get("base") if project else None)
    with contextlib.ExitStack() as stack:
        local = None
        if options.target == "serve":
            reference = options.model or (f"{project.name}@latest" if project else None)
            if reference is None:
                raise ShipmlError("which model? shipml build NAME@ALIAS --tag IMAGE")
            source = Store(store_url_here(options.store))
            local = source.fetch(parse_reference(reference))
            if options.onnx:
                # Imported here: skl2onnx and onnxruntime are an extra, needed by --onnx only.
                from shipml.scoring.convert import describe_check, onnx_version

                local, check = stack.enter_context(onnx_version(local, source))
                say(describe_check(check))
        return build_image(
            tag=options.tag,
            target=options.target,
            local=local,
            project=project,
            base=base or DEFAULT_BASE,
            dockerfile_only=options.dockerfile_only,
            no_cache=options.no_cache,
            extras=options.extra,
            onnx=options.onnx,
            say=say,
            on_line=on_line,
        )


def _check_target(target: str, onnx: bool) -> None:
    if target not in ("serve", "train"):
        raise BuildError(f"unknown target {target!r}: use serve or train")
    if onnx and target == "train":
        raise BuildError("--onnx is for serve images: a train image runs the training code")


def build_image(
    *,
    tag: str,
    target: str = "serve",
    local: LocalModel | None = None,
    project: Project | None = None,
    base: str = DEFAULT_BASE,
    dockerfile_only: Path | None = None,
    smoke: bool = True,
    no_cache: bool = False,
    extras: list[str] | None = None,
    onnx: bool = False,
    say: Say = print,
    on_line: Callable[[str], None] = lambda line: None,
) -> Built | Path:
    """Build (or, with ``dockerfile_only``, only lay out) a serve or train image."""
    _check_target(target, onnx)
    client = engine.connect()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="shipml-build-") as scratch:
        folder = dockerfile_only or Path(scratch)
        if dockerfile_only and dockerfile_only.exists() and any(dockerfile_only.iterdir()):
            raise BuildError(f"{dockerfile_only} is not empty; give a new folder for the context")
        folder.mkdir(parents=True, exist_ok=True)
        if target == "serve":
            if local is None:
                raise BuildError("a serve image needs a model: shipml build NAME@ALIAS --tag ...")
            environment = (
                project.environment if project and project.name == local.manifest.name else None
            )
            spec = serve_context(
                local,
                folder,
                base,
                client,
                environment=environment,
                extras=extras or [],
                say=say,
                onnx=onnx,
            )
        else:
            if project is None:
                raise BuildError("a train image needs a project: run it in the project folder")
            spec = train_context(project, folder, base, client, extras=extras or [], say=say)
        (folder / "Dockerfile").write_text(render(spec))
        if dockerfile_only:
            say(f"Wrote the Dockerfile and its context to {folder}: docker build -t {tag} {folder}")
            return folder
        say(f"Building {tag} from {base}")
        image_id = engine.build(client, folder, tag, on_line, no_cache=no_cache)
    seconds = (datetime.now(UTC) - started).total_seconds()
    size = int(client.images.get(image_id).attrs["Size"])
    ready = None
    if target == "serve" and smoke and local is not None:
        say("Smoke test: starting a container and asking it the model's example")
        try:
            ready = smoke_test(client, tag, local, ENGINE if onnx else None)
        except Exception:
            client.images.remove(tag, noprune=True)
            raise
    return Built(tag=tag, image_id=image_id, size=size, seconds=seconds, ready_seconds=ready)


def smoke_test(
    client: DockerClient, tag: str, local: LocalModel, engine_name: str | None = None
) -> float:
    """Run ``tag``, wait for readiness, check digest, engine, versions and the example."""
    container = engine.run(client, tag, port=None)
    try:
        url = engine.published_url(container)
        ready = engine.wait_ready(container, url)
        info = httpx.get(f"{url}/info", timeout=10).json()
        if info["digest"] != local.digest:
            raise BuildError(f"the image serves {info['digest']}, not {local.digest}")
        if engine_name is not None and info.get("engine") != engine_name:
            raise BuildError(f"the image answers through {info.get('engine')}, not {engine_name}")
        manifest = local.manifest
        for library, trained in ({} if engine_name else pinned_packages(manifest)).items():
            running = info["runtime"].get(library)
            if running != trained:
                runs = f"runs {library}=={running}" if running else f"has no {library}"
                raise BuildError(
                    f"{manifest.ref} was trained with {library}=={trained} but the image "
                    f"{runs}; pin {library}=={trained} in the environment file"
                )
        if manifest.example is not None:
            answer = httpx.post(f"{url}/predict", json=manifest.example, timeout=30)
            if answer.status_code != 200:
                raise BuildError(
                    f"the image answered its example with {answer.status_code}: {answer.text}"
                )
        return ready
    finally:
        engine.remove_container(container)
