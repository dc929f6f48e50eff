"""Deployment (DESIGN §7): where a serve image runs, and how it is replaced.

:mod:`.targets` holds one module per target, all of one shape. Runtime targets
(``docker``: one engine, local or over SSH; ``compose``) start containers behind the nginx
:mod:`.balancer`, replace replicas with :mod:`.rollout` and find the parts of a
deployment again through the labels of :mod:`.naming`. Generated targets
(``kubernetes``, with :mod:`.kubectl`; ``aci``) write files for another system to run.
The CI pipelines of :mod:`.ci` build and deploy with these same commands.
"""

from __future__ import annotations
