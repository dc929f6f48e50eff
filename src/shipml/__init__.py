"""shipml: from a trained model to a versioned, containerized REST service.

The one call a training script needs::

    import shipml
    shipml.save_model(model, training_data=X, feature_names=FEATURES, metrics={...})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from shipml.saving import save_model

__all__ = ["__version__", "save_model"]


def __getattr__(name: str) -> Any:
    # save_model brings numpy, joblib and the flavours: loaded on first use, so that
    # `import shipml.serving` (every worker) and `shipml --help` do not pay for them.
    if name == "save_model":
        from shipml.saving import save_model

        return save_model
    raise AttributeError(f"module 'shipml' has no attribute {name!r}")
