"""The ``azureml.contrib.services`` modules and the request object of ``@rawhttp`` scripts.

Microsoft's server makes ``azureml.contrib.services.aml_request`` and ``aml_response``
importable by planting its own modules under those names, leaving the rest of
``azureml.*`` (azureml-core, if installed) untouched. shipml does the same, lazily: a
finder maps the two names onto :mod:`shipml.scoring.azureml.aml_request` and
``aml_response`` only when a script imports them, so werkzeug (which they need) is
imported, and must be installed in an image, only for the scripts that use them. The
parent packages ``azureml``, ``azureml.contrib`` and ``azureml.contrib.services`` are
provided as empty packages only when nothing installed provides them, and so is
``azureml.monitoring`` (v1 data collection, :mod:`shipml.scoring.azureml.monitoring`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from shipml.scoring.azureml.call import ScoreCall

SHIMS = {
    "azureml.contrib.services.aml_request": "shipml.scoring.azureml.aml_request",
    "azureml.contrib.services.aml_response": "shipml.scoring.azureml.aml_response",
}
# Provided only when nothing installed provides them (shipml.scoring.azureml.monitoring).
FALLBACKS = {"azureml.monitoring": "shipml.scoring.azureml.monitoring"}
PARENTS = ("azureml", "azureml.contrib", "azureml.contrib.services")


class _Alias(importlib.abc.Loader):
    """Loads a module that already exists under another name."""

    def __init__(self, target: str | None) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        if self.target is None:  # an empty parent package
            module = ModuleType(spec.name)
            module.__path__ = []
            return module
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        return None


class ShimFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in SHIMS:
            return importlib.util.spec_from_loader(fullname, _Alias(SHIMS[fullname]))
        if fullname in FALLBACKS and not _installed(fullname, path):
            return importlib.util.spec_from_loader(fullname, _Alias(FALLBACKS[fullname]))
        if fullname in PARENTS and not _installed(fullname, path):
            return importlib.util.spec_from_loader(fullname, _Alias(None), is_package=True)
        return None


def _installed(fullname: str, path: Sequence[str] | None) -> bool:
    for finder in sys.meta_path:
        if isinstance(finder, ShimFinder):
            continue
        find = getattr(finder, "find_spec", None)
        if find is not None and find(fullname, path) is not None:
            return True
    return False


def install() -> None:
    """Make the two modules importable (once per process)."""
    if not any(isinstance(finder, ShimFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, ShimFinder())


def reset_rawhttp() -> None:
    """Forget an earlier script's ``@rawhttp`` before importing a new one."""
    module = sys.modules.get(SHIMS["azureml.contrib.services.aml_request"])
    if module is not None:
        module._rawHttpRequested = False  # type: ignore[attr-defined]


def rawhttp_requested() -> bool:
    module = sys.modules.get(SHIMS["azureml.contrib.services.aml_request"])
    return bool(getattr(module, "_rawHttpRequested", False))


def request_object(call: ScoreCall) -> Any:
    """An ``AMLRequest`` (a werkzeug ``Request``) over the WSGI environ a server would build."""
    # on use: werkzeug, for @rawhttp scripts only
    from shipml.scoring.azureml.aml_request import AMLRequest

    return AMLRequest(wsgi_environ(call))


def wsgi_environ(call: ScoreCall) -> dict[str, Any]:
    """The environ gunicorn would hand a WSGI app for this request."""
    query = call.query.decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": call.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": call.path,
        "QUERY_STRING": query,
        "RAW_URI": call.path + (f"?{query}" if query else ""),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": call.server[0],
        "SERVER_PORT": str(call.server[1]),
        "REMOTE_ADDR": call.client[0],
        "REMOTE_PORT": str(call.client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": call.scheme,
        "wsgi.input": io.BytesIO(call.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,  # the whole body is here: read it to its end
    }
    for name, value in call.header_dict().items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ
