"""``python -m shipml.serving.probe``: the image's HEALTHCHECK, exit 0 when ready.

Reads the port from ``SHIPML_PORT`` so the check follows a changed port; stdlib only,
so it costs a few milliseconds and nothing to install. It waits 3 s for the answer, as the
generated Kubernetes readiness probes do (shipml.deploy.probes says why).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("SHIPML_PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
