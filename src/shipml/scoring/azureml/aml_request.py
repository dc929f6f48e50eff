"""``azureml.contrib.services.aml_request``, as Microsoft's server provides it.

A scoring script imports ``rawhttp`` and ``AMLRequest`` from
``azureml.contrib.services.aml_request``; shipml maps that name onto this module when the
script is imported (nothing to install). ``@rawhttp`` marks ``run(request)`` as wanting
the HTTP request itself: a werkzeug ``Request`` (the class Flask's request derives from),
so ``request.method``, ``get_data()``, ``get_json()``, ``args``, ``headers``, ``files``,
``full_path`` ... behave as under Microsoft's server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from werkzeug.wrappers import Request

F = TypeVar("F", bound=Callable[..., Any])

# Set when a script applies @rawhttp; read (and reset before each import) by shipml.
_rawHttpRequested = False


def rawhttp(func: F) -> F:
    """Ask for the raw HTTP request: ``run(request)`` gets an :class:`AMLRequest`."""
    global _rawHttpRequested  # noqa: PLW0603 - the flag is this module's public contract
    _rawHttpRequested = True
    return func


class AMLRequest(Request):
    """The request ``@rawhttp`` scripts receive (a werkzeug ``Request``)."""
