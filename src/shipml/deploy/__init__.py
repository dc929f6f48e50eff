"""Deployment targets (DESIGN §7): where a serve image runs, and how it is replaced.

Runtime targets start containers and wait until they serve: :mod:`.docker` (one engine,
local or over SSH) and :mod:`.compose` (a Compose file and its rollout), both behind the
nginx :mod:`.balancer` and replacing replicas with :mod:`.rollout`. Parts of a deployment
are found again through the labels of :mod:`.naming`.
"""

from __future__ import annotations
