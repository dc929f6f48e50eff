"""``python -m shipml.serving``: the service, configured by ``SHIPML_*`` variables alone.

This is the entry point of serve images, which carry the runtime but not the command
line: ``SHIPML_MODEL_DIR`` names a baked-in model folder, or ``SHIPML_MODEL`` (a
reference such as ``iris@production``) and ``SHIPML_STORE`` name one to fetch at start.
"""

from __future__ import annotations

import sys

from shipml.errors import ShipmlError
from shipml.serving.server import model_source, run_server
from shipml.serving.settings import load_settings


def main() -> None:
    try:
        settings = load_settings()
        model_source(settings)  # fail now, with a message, if nothing names a model
        run_server(settings)  # a port it cannot listen on is a message too
    except ShipmlError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
