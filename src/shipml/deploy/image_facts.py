"""What a deployment file needs to know about a serve image: model, version, port.

``shipml build`` writes these into the image's labels, so the usual way is to read them
from the local engine. Every one can also be given on the command line; when all that
is needed is given, no engine is contacted at all (a CI job or a laptop without Docker
can still write the files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipml.deploy.validation import ManifestError
from shipml.image.dockerfile import PORT
from shipml.store import parse_reference

LABEL_NAME = "io.shipml.model.name"
LABEL_VERSION = "io.shipml.model.version"
LABEL_REF = "io.shipml.model.ref"
LABEL_DIGEST = "io.shipml.model.digest"
LABEL_TARGET = "io.shipml.target"


@dataclass(frozen=True)
class ImageFacts:
    image: str
    model_name: str
    model_version: str
    port: int
    digest: str | None = None

    @property
    def model_ref(self) -> str:
        version = self.model_version
        return (
            f"{self.model_name}@{version}"
            if not version.isdigit()
            else f"{self.model_name}:{version}"
        )


def image_facts(
    image: str,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    port: int | None = None,
    serve_model: str | None = None,
) -> ImageFacts:
    """Facts from the flags given, the rest from the image's labels in the local engine.

    ``serve_model`` is the reference a deployment fetches from a store instead of the
    baked-in model (``--model iris@production``): it names the model and version too.
    """
    if not image or any(c.isspace() for c in image):
        raise ManifestError(f"{image!r} is not an image name; write e.g. myreg.azurecr.io/iris:3")
    if serve_model:
        ref = parse_reference(serve_model)
        if ref.path is not None:
            raise ManifestError(
                f"--model {serve_model!r} is a file; a deployment fetches a model from the "
                "store: give NAME:N or NAME@ALIAS"
            )
        model_name = model_name or ref.name
        model_version = model_version or str(ref.version or ref.alias)
    if model_name and model_version:
        return ImageFacts(image, model_name, model_version, port or PORT)
    config = _image_config(image)
    labels: dict[str, str] = config.get("Labels") or {}
    if labels.get(LABEL_TARGET) == "train":
        raise ManifestError(
            f"{image} is a train image; deploy a serve image (shipml build NAME:N --tag ...)"
        )
    name = model_name or labels.get(LABEL_NAME)
    version = model_version or labels.get(LABEL_VERSION)
    if not name or not version:
        raise ManifestError(
            f"{image} has no shipml model labels (was it built by 'shipml build'?); "
            "give --model-name and --model-version"
        )
    exposed = [int(key.split("/")[0]) for key in config.get("ExposedPorts") or {}]
    return ImageFacts(
        image,
        name,
        version,
        port or (exposed[0] if len(exposed) == 1 else PORT),
        labels.get(LABEL_DIGEST),
    )


def _image_config(image: str) -> dict[str, Any]:
    """The image's config (labels, exposed ports) from the local engine."""
    from docker.errors import ImageNotFound  # on use: the engine only when the labels must be read

    from shipml.image import engine  # on use: the engine only when the labels must be read

    hint = "or give --model-name and --model-version so no engine is needed"
    try:
        client = engine.connect()
    except engine.EngineError as exc:
        raise ManifestError(f"cannot read the labels of {image}: {exc.message}; {hint}") from None
    try:
        attrs: dict[str, Any] = client.images.get(image).attrs
    except ImageNotFound:
        raise ManifestError(
            f"no image {image} in the local engine to read its labels from: build or pull "
            f"it first, {hint}"
        ) from None
    return dict(attrs.get("Config") or {})


def registry_of(image: str) -> str | None:
    """The registry host of ``image``, or None for Docker Hub names (Docker's own rule)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None
