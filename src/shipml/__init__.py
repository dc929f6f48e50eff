"""shipml: from a trained model to a versioned, containerized REST service.

The one call a training script needs::

    import shipml
    shipml.save_model(model, training_data=X, feature_names=FEATURES, metrics={...})
"""

from __future__ import annotations

__version__ = "0.1.0"

from shipml.saving import save_model

__all__ = ["__version__", "save_model"]
