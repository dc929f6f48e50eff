"""Deployment targets (DESIGN §7): where a serve image runs, and how it is replaced.

Runtime targets start containers and wait until they serve: :mod:`.docker` (one engine,
local or over SSH) and :mod:`.compose` (a Compose file and its rollout), both behind the
nginx :mod:`.balancer` and replacing replicas with :mod:`.rollout`; parts of a deployment
are found again through the labels of :mod:`.naming`. Generated targets write files for
another system to run: :mod:`.kubernetes`, :mod:`.aci`, and the CI pipelines of
:mod:`.ci`.
"""

from __future__ import annotations
