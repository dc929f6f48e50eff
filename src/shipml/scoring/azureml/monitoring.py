"""A stand-in for ``azureml.monitoring``: Azure ML v1's ``ModelDataCollector``.

v1 scoring scripts written for AKS create collectors in ``init()`` and call
``collect(...)`` in ``run()`` to copy inputs and predictions to the workspace's blob
storage. That collection only ever happens inside an AKS deployment with collection
switched on; anywhere else the real package prints that collection is not enabled and
``collect`` does nothing. The package itself (``azureml-monitoring``, last released as
an alpha in 2020) can no longer help off Azure: its native library needs OpenSSL 1.0
(``libcrypto.so.1.0.0``), absent from current Linux distributions, so a collector built
there is broken and every ``collect`` raises ``AttributeError``.

So that such scripts run unchanged, shipml makes ``azureml.monitoring`` importable with
this module when no installed package provides it (an installed one wins, as with every
other import): collectors that accept the real constructor's arguments, collect nothing
and say so once in the log. Requests and answers are counted by shipml's own metrics.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("shipml")
_told: list[bool] = []


class ModelDataCollector:
    """Accepts what azureml-monitoring's collector accepts; collects nothing."""

    def __init__(  # noqa: PLR0917 - the real constructor's positional arguments
        self,
        model_name: str,
        designation: str = "default",
        feature_names: list[str] | None = None,
        workspace: str = "default/default/default",
        webservice_name: str = "default",
        model_version: str = "default",
        collection_name: str = "default",
        identifier: str | None = None,  # the SDK's earlier name for designation
    ) -> None:
        self.model_name = model_name
        self.designation = identifier or designation
        self.feature_names = list(feature_names or [])
        if not _told:
            _told.append(True)
            log.info(
                "azureml.monitoring.ModelDataCollector(%r): Azure ML v1 data collection "
                "happens only in AKS deployments; shipml collects nothing (its metrics "
                "and logs count requests)",
                model_name,
            )

    def collect(self, input_data: Any, user_correlation_id: str = "") -> None:
        """What the real collector does when collection is not enabled: nothing."""

    def add_correlations(self, input_data: Any, correlations: Any) -> Any:
        return input_data
