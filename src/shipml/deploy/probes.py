"""How long a health probe waits for an answer, for every target that probes (Kubernetes,
Azure Container Instances, the image's HEALTHCHECK).

What the service guarantees (docs/performance.md, "Large requests"): ``/health/live`` and
``/health/ready`` are answered by a worker's event loop, which never runs a model call
estimated over 2 ms, nor parses or writes a large body, and holds Python's lock for at
most ~20 ms per MiB of request (1 MiB by default). Measured on two busy cores with eight
clients sending 100,000-row requests: median 40-90 ms, worst 0.5 s. A probe times out
only when something is wrong, so the timeouts keep a margin of several times that (CPU
limits throttle a busy pod, too), and a pod is restarted only after its liveness probe
has failed three times in a row.
"""

from __future__ import annotations

LIVENESS_TIMEOUT = 5  # seconds; three failures 10 s apart restart the container
READINESS_TIMEOUT = 3  # seconds; two failures take the pod out of the Service
STARTUP_TIMEOUT = 3  # seconds per attempt while the model loads
