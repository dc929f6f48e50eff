"""What a failed read or write on this machine's disks means, said so a user can act.

The store (a local folder) and the cache are plain folders: a full disk, a missing
permission or a read-only mount are the user's to fix, and the message says which one
it is, where, and what to do — never a traceback.
"""

from __future__ import annotations

import errno
import os

from shipml.errors import DiskFull, StoreError

STORE_HINT = "point SHIPML_STORE (or --store) at another folder"
CACHE_HINT = "point SHIPML_CACHE at another folder"


def explain(exc: OSError, what: str, where: object, hint: str) -> StoreError:
    """The error to raise for ``exc``, met while trying to ``what`` in ``where``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"cannot {what}: the disk holding {where} is full ({os.strerror(exc.errno)}); "
            f"nothing half-written was kept. Free some space there and try again, or {hint}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"
        return StoreError(
            f"cannot {what}: permission denied on {exc.filename or where} (running as "
            f"{user}). Give this user read access to it (and write access to publish), or {hint}"
        )
    if exc.errno == errno.EROFS:
        return StoreError(f"cannot {what}: {where} is on a read-only filesystem; {hint}")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StoreError(f"cannot {what} in {where}: {reason}")
