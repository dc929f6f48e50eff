"""Deployment targets: one module each, all of one shape, so a new target is one module.

Every target module has:

- ``Options``: what the user asked for, field for field the options of its
  ``shipml deploy <target>`` command (the CLI builds it from its parameters by name);
- ``check(options[, facts]) -> Resolved``: the options checked, defaults filled in, as a
  type of its own, so no half-checked options reach the rest of the module;
- runtime targets (``docker``, ``compose``) then ``apply(resolved, say)``, which starts
  the replicas and waits until they serve, and ``remove(options)``;
- generated targets (``kubernetes``, ``aci``) then ``render`` (file name → text) and
  ``write`` the files, and ``apply`` them with the platform's own tool.
"""

from __future__ import annotations

TARGETS = ("docker", "compose", "kubernetes", "aci")
