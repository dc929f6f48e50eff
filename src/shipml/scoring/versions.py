"""The library versions a model was saved with, against the ones installed.

A different major version of one of the model's own libraries (its flavour's library, any
library its pickle refers to) or of numpy refuses to load, naming both versions; any other
difference is a warning in the log. Checked before any model file is opened: by the
loader for a stored version, and for an MLflow folder from its ``MLmodel``.
"""

from __future__ import annotations

import logging

from shipml import flavours
from shipml.errors import ShipmlError
from shipml.store.manifest import Manifest, library_versions

log = logging.getLogger("shipml")
# A major-version change of these breaks pickles outright, so it is an error, not a warning.
STRICT_LIBRARIES = ("numpy",)


class LibraryMismatch(ShipmlError):
    code = "library_mismatch"


def check_libraries(manifest: Manifest) -> list[str]:
    """Compare trained-with and installed versions; return the warnings, raise on breakage."""
    installed = library_versions(manifest.libraries)
    strict = {
        *STRICT_LIBRARIES,
        manifest.framework.get("name", ""),
        *flavours.strict_libraries(manifest),
    }
    problems: list[str] = []
    for library, trained in manifest.libraries.items():
        current = installed.get(library)
        if current == trained:
            continue
        if library == "python":
            if current.split(".")[:2] != trained.split(".")[:2]:  # type: ignore[union-attr]
                problems.append(
                    f"{manifest.ref} was trained on Python {trained}, running {current}"
                )
            continue
        if current is None:
            if library in strict:
                raise LibraryMismatch(
                    f"{manifest.ref} needs {library} (trained with {library}=={trained}) but "
                    f"it is not installed: pip install {library}=={trained}"
                )
            continue
        message = (
            f"{manifest.ref} was trained with {library}=={trained} but {library}=={current} "
            "is installed"
        )
        if library in strict and current.split(".")[0] != trained.split(".")[0]:
            raise LibraryMismatch(
                f"{message}; a different major version cannot load it safely. "
                f"Install {library}=={trained} or retrain the model."
            )
        problems.append(message + f"; pin {library}=={trained} to be sure it behaves the same")
    for problem in problems:
        log.warning(problem)
    return problems
