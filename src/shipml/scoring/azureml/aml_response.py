"""``azureml.contrib.services.aml_response``, as Microsoft's server provides it.

``AMLResponse(message, status_code, response_headers={}, json_str=False)`` is returned
as it is: with ``json_str=True`` the message is written with ``json.dumps`` as
``application/json``; otherwise it is the body as given (text or bytes; the default
content type is ``text/html; charset=utf-8``, as Flask's). ``None`` is written as ``{}``.
A header value holding commas becomes one header per comma-separated part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response


class AMLResponse(Response):
    """A response a ``@rawhttp`` (or any) ``run()`` returns to control status and headers."""

    default_mimetype = "text/html"  # Flask's Response, which Microsoft's derives from

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        headers = dict(response_headers or {})
        if message is None:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        elif json_str:
            super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if "Content-Type" in headers:
                self.headers.remove("Content-Type")  # the loop below sets the caller's
        self.headers["x-ms-run-function-failed"] = str(run_function_failed)
        for header, value in headers.items():
            for part in value.split(","):
                self.headers.add_header(header, part.strip())
