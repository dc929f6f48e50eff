"""Imports made once in the master, before it forks the workers.

Every worker needs the serving stack and the model's library (scikit-learn brings SciPy
and pandas: about a second of CPU on the development machine). Imported in each worker,
that second is paid once per worker, and when the workers outnumber the CPUs that are
free (a small container, a load generator or a test suite beside the server) they start
one after another. Imported in the master, the modules are there in every worker at the
fork, shared copy-on-write: one import, less memory, and a worker gunicorn restarts
comes up without importing anything either.

Only modules are imported here. Nothing of the model is read or run in the master: each
worker still fetches, verifies and loads the version itself. The modules come from the
flavour the manifest names (a library shipml knows), never from the model's own files.

Forking after these imports is safe: OpenMP starts its threads at the first parallel
region, which the master never runs; OpenBLAS reads its thread count from the variables
:func:`shipml.serving.sizing.settle` exported before numpy loaded, and stops its pool at
a fork. ``prometheus_client`` (imported with the app) must see
``PROMETHEUS_MULTIPROC_DIR``: :func:`shipml.serving.server.run_server` sets it first.
"""

from __future__ import annotations

import importlib
import logging
import time

from shipml.errors import ShipmlError
from shipml.serving.settings import ServeSettings
from shipml.store import Manifest, Store, library_versions, parse_reference
from shipml.store.backend import LocalBackend
from shipml.store.paths import MANIFEST

log = logging.getLogger("shipml")

# What every worker imports whatever the model: the ASGI app and the service behind it.
SERVING = ("shipml.serving.app",)


def preload(settings: ServeSettings) -> None:
    """Import what the workers will need; a failure is logged, never raised.

    A module that cannot be imported here fails again in the worker, which reports it
    the way it reports any load error (the master has no say in that).
    """
    started = time.perf_counter()
    done = []
    for name in (*SERVING, *model_modules(settings)):
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure: the worker reports it properly
            log.debug("preloading %s failed: %s", name, exc)
            continue
        done.append(name)
    seconds = time.perf_counter() - started
    log.info("imported %s in %.2f s, before forking the workers", ", ".join(done), seconds)


def model_modules(settings: ServeSettings) -> tuple[str, ...]:
    """The modules the configured model's flavour loads with, and the module of the
    model's class when the manifest records one inside them; () when that is not known
    without loading the model or asking the network (a model file, a scoring script, a
    remote store)."""
    # Imported here: the flavours import numpy, which must come after settle() (sizing.py).
    from shipml.flavours import of_manifest
    from shipml.scoring.onnx import is_converted

    try:
        manifest = _manifest(settings)
    except (ShipmlError, OSError, ValueError) as exc:
        log.debug("no manifest to preload from: %s", exc)
        return ()
    if manifest is None:
        return ()
    if settings.model_dir is not None and not settings.model and is_converted(settings.model_dir):
        return ("onnxruntime",)  # served by ONNX Runtime: the model's library is not loaded
    library_versions(manifest.libraries)  # looked up once here, for every worker's check
    flavour = of_manifest(manifest)
    if flavour is None:
        return ()
    modules = flavour.runtime_modules()
    owner = str(manifest.flavour.get("class", "")).rpartition(".")[0]
    if owner.split(".")[0] in modules:  # e.g. sklearn.linear_model._logistic
        modules = (*modules, owner)
    return modules


def _manifest(settings: ServeSettings) -> Manifest | None:
    """The manifest of the version the workers will load, read but not verified (they
    verify it); None for a model file or a remote store."""
    if settings.model_dir is not None and not settings.model:
        path = settings.model_dir / MANIFEST
        return Manifest.from_bytes(path.read_bytes(), str(path))
    ref = parse_reference(settings.model)
    if ref.path is not None:
        return None
    store = Store(settings.store)
    if not isinstance(store.backend, LocalBackend):
        # Not over the network: a store out of reach would hold the master (and the
        # workers' start) in the client's retries. The workers import what they need.
        return None
    return store.manifest(ref.name, store.resolve(ref))[0]
