"""The ``shipml`` command line: one module per command group, each command thin.

A command parses its options, calls one function of the package that owns the work and
prints the result (:mod:`.app` for the top-level commands, :mod:`.models`, :mod:`.deploy`,
:mod:`.ci`, :mod:`.monitor` for the groups, :mod:`.common` for what they share).
"""

from __future__ import annotations

from shipml.cli.app import app, main

__all__ = ["app", "main"]
