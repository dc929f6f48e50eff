"""Start ``azmlinfsrv`` bound to 127.0.0.1 instead of its hard-wired 0.0.0.0.

azureml-inference-server-http 1.5.1 has no host option (``constants.DEFAULT_HOST``); the
benchmark keeps every server on the loopback, so this sets the constant before the CLI
module reads it, then runs the CLI unchanged (gunicorn, its access log, its workers).
"""

from __future__ import annotations

from azureml_inference_server_http import constants

constants.DEFAULT_HOST = "127.0.0.1"

from azureml_inference_server_http.amlserver import run  # noqa: E402

run()
