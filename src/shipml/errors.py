"""One error hierarchy for the whole of shipml.

Every error carries the HTTP status it maps to and a stable machine-readable code, so
the service turns any of them into the same JSON body, and the command line prints the
message alone (no traceback): messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class ShipmlError(Exception):
    """Base class: a problem the user can understand and fix."""

    status: int = 500
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- configuration and store ------------------------------------------------------------


class ProjectError(ShipmlError):
    """``shipml.yaml`` is missing or wrong; the message names the file and the key."""

    code = "invalid_project"


class ModelReferenceError(ShipmlError):
    """A model reference is malformed or names nothing in the store."""

    status = 404
    code = "model_not_found"


class StoreError(ShipmlError):
    """The store cannot be reached or used."""

    code = "store_error"


class DiskFull(StoreError):
    """A write to the store or the cache ran out of space; nothing half-written was kept."""

    code = "disk_full"


class IntegrityError(ShipmlError):
    """A stored file does not match the digest its manifest records."""

    code = "integrity_error"


class UntrustedModel(IntegrityError):
    """Trust checks are on (``SHIPML_TRUSTED_KEYS``) and no trusted key signed the version."""

    code = "untrusted_model"


class ListenError(ShipmlError):
    """The service cannot listen where it was asked to (port in use, no permission, ...)."""

    code = "listen_failed"


class TrainingError(ShipmlError):
    """The training entrypoint failed or saved no model."""

    code = "training_failed"


# -- request errors, raised while serving ----------------------------------------------


class InvalidJSON(ShipmlError):
    status = 400
    code = "invalid_json"


class Unauthorized(ShipmlError):
    status = 401
    code = "unauthorized"


class NotFound(ShipmlError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ShipmlError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed on {path}; use {', '.join(allowed)}")
        self.allowed = allowed


class OriginNotAllowed(ShipmlError):
    """A browser page of an origin the CORS settings do not allow asked first (preflight)."""

    status = 403
    code = "origin_not_allowed"

    def __init__(self, origin: str) -> None:
        super().__init__(
            f"pages from {origin} may not call this service; allow the origin with "
            "SHIPML_CORS_ORIGINS (or serve: cors_origins in shipml.yaml)"
        )


class PayloadTooLarge(ShipmlError):
    status = 413
    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body is larger than {limit} bytes; send fewer records per request "
            "or raise SHIPML_MAX_BODY_BYTES"
        )


class InvalidInput(ShipmlError):
    """The body parsed but does not fit the model's input schema."""

    status = 422
    code = "invalid_input"


class ModelDefinitionError(ShipmlError):
    """The model as saved cannot be saved or served as given (no input schema, an
    ``input_example`` that is not a record, ``feature_names`` that do not fit the data):
    the developer's to fix, never a request's (which is :class:`InvalidInput`)."""

    code = "invalid_model"


class ModelError(ShipmlError):
    """The model raised; the traceback goes to the log, never to the client."""

    status = 500
    code = "model_error"


class LoadFailed(ShipmlError):
    """The model's own code failed while loading (its import or ``init()``).

    Final: the same code would fail the same way, so it is not retried. ``detail`` (the
    traceback, the model folder's listing) goes to the log and to ``/health/ready``.
    """

    status = 503
    code = "load_failed"

    def __init__(self, message: str, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class NotReady(ShipmlError):
    """The model is not loaded yet; ``detail`` says how far loading got and why."""

    status = 503
    code = "not_ready"
    retry_after = 1

    def __init__(self, message: str, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class Overloaded(ShipmlError):
    status = 503
    code = "overloaded"
    retry_after = 1
