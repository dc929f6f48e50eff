"""What ``shipml serve`` and ``shipml predict`` start: a server, or one prediction made in
this process. The command line only parses options and prints; the work is here.

Not imported by workers (``python -m shipml.serving``): the master resolves the model
once, here, and hands every worker the same verified version through the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from shipml.errors import ShipmlError
from shipml.project import find_project, load_project, store_url_here
from shipml.serving.settings import ServeSettings, load_settings
from shipml.serving.sizing import settle
from shipml.store import Store, parse_reference

Say = Callable[[str], None]


def serve(
    model: str,
    *,
    store: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None = None,
    onnx: bool,
    say: Say,
) -> None:
    """Serve ``model`` (a store reference or a model file) until the server stops."""
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
    with contextlib.ExitStack() as stack:
        if ref.path is None:
            # Resolve and verify once, here, so a bad reference fails now and every worker
            # serves the same version even if a new one is published meanwhile.
            target = Store(store_url_here(store))
            local = target.fetch(ref, settings.cache_dir)
            settings = settings.with_overrides(model=local.manifest.ref, store=target.url)
            say(f"Serving {local.manifest.ref} ({local.digest[:19]}…) from {target.url}")
            example = local.manifest.example
            if onnx:
                settings = _onnx(stack, local, target, settings, say)
        else:
            from shipml.scoring.loader import open_model_file  # numpy: after settle()

            # a file that is not a model fails now, not per worker; no call of the model
            # here, in the master (its workers probe it: scoring/nulls.py)
            open_model_file(ref.path, probe=False)
            settings = settings.with_overrides(model=str(ref.path))
            example = None
        url = f"http://{settings.host}:{settings.port}"
        record = orjson.dumps(example).decode() if example is not None else "<record>"
        say(f"Playground: {url}/   API docs: {url}/docs")
        say(f"Try: curl -X POST {url}/predict -H 'Content-Type: application/json' -d '{record}'")
        _serve_or_explain(settings, stack)


def _onnx(
    stack: contextlib.ExitStack, local: Any, target: Store, settings: ServeSettings, say: Say
) -> ServeSettings:
    """Convert and check the version for ONNX Runtime; serve the converted copy."""
    # Imported here: skl2onnx and onnxruntime are an extra, loaded only with --onnx.
    from shipml.scoring.convert import describe_check, onnx_version

    converted, check = stack.enter_context(onnx_version(local, target))
    say(describe_check(check))
    return settings.with_overrides(model="", model_dir=converted.folder)


def _serve_or_explain(settings: ServeSettings, stack: contextlib.ExitStack) -> None:
    """Serve; if the model's own code cannot load, stop with its error on one line.

    A worker whose score.py fails in import or init() writes the error to the file named
    by ``SHIPML_LOAD_ERROR_FILE`` and exits with gunicorn's boot-error status, which
    stops the server (its traceback is in the log above).
    """
    from shipml.serving.server import run_server, scratch_dir  # the server stack, when serving

    scratch = scratch_dir()
    try:
        report = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=scratch))) / "load-error"
    except OSError as exc:  # a full /tmp: say so, not a traceback
        raise ShipmlError(
            f"cannot create a temporary folder in {scratch}: {exc.strerror}; "
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


def predict_once(model: str, body: bytes, store: str | None) -> str:
    """Score ``body`` with ``model`` in this process; the answer as the service writes it."""
    from shipml.scoring.azureml import ScoreCall  # predict only: the serve master loads no model
    from shipml.scoring.loader import open_model_file
    from shipml.serving.metrics import Metrics
    from shipml.serving.service import Service

    ref = parse_reference(model)
    path = ref.path
    if path is not None:
        service = Service(lambda: open_model_file(path), Metrics())
    else:
        target = Store(store_url_here(store))
        service = Service(lambda: target.fetch(ref), Metrics())
    service.load_now()
    if service.scorer is not None and service.scorer.contract == "azureml":
        # run() takes the body as it is (not necessarily JSON) and writes its own answer
        call = ScoreCall("POST", "/score", b"", [(b"content-type", b"application/json")], body)
        answer = asyncio.run(service.score(call, "cli"))
        return answer.body.decode("utf-8", "replace")
    result = asyncio.run(service.predict(body, "cli"))
    return orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
