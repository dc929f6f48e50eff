"""Worker and thread sizing: as many workers as CPUs the process may use, one native
thread each.

Why: scikit-learn's OpenMP code (histogram gradient boosting, k-means…) and BLAS start
one thread per *host* core in every process. Two workers on two cores, each with two
OpenMP threads, oversubscribe the machine and run slower than one thread per worker
(issue 16: 5.5x on a ColumnTransformer + HistGradientBoosting model). The CPUs a process
may use are not ``os.cpu_count()``: a container's CPU limit is a cgroup quota (Docker
``--cpus``, a Kubernetes ``limits.cpu``), and ``taskset``/cpusets narrow the affinity.

The rule: ``cpus`` = the smallest of the affinity mask, the cgroup v2 ``cpu.max`` and the
v1 ``cpu.cfs_quota_us / cpu.cfs_period_us`` of this process's cgroup and its ancestors,
and the ``cpus`` setting; a fractional quota rounds down (at least 1), so workers x
threads never exceed it. ``workers`` defaults to ``cpus``; ``threads`` to
``cpus // workers`` (at least 1). Both are settings (docs/project.md).

Applied twice, because neither alone covers every library: the master sets
``OMP_NUM_THREADS`` & co. before any worker imports numpy (libraries read them when
they load), and each worker calls threadpoolctl once its model is loaded (libraries that
were loaded before the variables were set, e.g. by a score.py's own imports).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipml.serving.settings import ServeSettings

log = logging.getLogger("shipml")

# Read by OpenMP (libgomp, Intel and LLVM runtimes), OpenBLAS, MKL, BLIS, Accelerate and
# numexpr when they load: the one way to reach a library before it starts its pool.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class _ThisProcess:
    """What this process decided or applied (a forked worker inherits the master's)."""

    decided: Sizing | None = None
    applied_threads: int | None = None  # threads per worker, once threadpoolctl applied them


_process = _ThisProcess()


@dataclass(frozen=True)
class CpuLimits:
    """What bounds the CPUs this process may use (None: that bound is absent)."""

    host: int  # os.cpu_count()
    affinity: int  # CPUs in the affinity mask (sched_getaffinity)
    quota: float | None  # the cgroup CPU quota in CPUs (e.g. 1.5), the tightest ancestor's
    setting: float | None  # the ``cpus`` setting, when given

    @property
    def usable(self) -> int:
        """Whole CPUs: the smallest bound, a fraction rounded down, at least one."""
        bounds: list[float] = [self.affinity]
        bounds += [b for b in (self.quota, self.setting) if b is not None]
        return max(1, math.floor(min(bounds)))

    def describe(self) -> str:
        parts = [f"affinity {self.affinity} of {self.host} host CPUs"]
        if self.quota is not None:
            parts.append(f"cgroup quota {self.quota:g}")
        if self.setting is not None:
            parts.append(f"setting cpus={self.setting:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Sizing:
    cpus: int
    workers: int
    threads: int  # native (OpenMP/BLAS/ONNX Runtime) threads per worker
    limits: CpuLimits

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "workers": self.workers,
            "threads_per_worker": self.threads,
            "bounds": {
                "host": self.limits.host,
                "affinity": self.limits.affinity,
                "cgroup_quota": self.limits.quota,
                "setting": self.limits.setting,
            },
        }

    def describe(self) -> str:
        oversubscribed = self.workers * self.threads > self.cpus
        return (
            f"{self.workers} worker{'s' if self.workers != 1 else ''} x {self.threads} native "
            f"thread{'s' if self.threads != 1 else ''} on {self.cpus} usable "
            f"CPU{'s' if self.cpus != 1 else ''} ({self.limits.describe()})"
            + ("; more threads than CPUs, as set" if oversubscribed else "")
        )


def plan(workers: int = 0, threads: int = 0, cpus: float = 0) -> Sizing:
    """The sizing for these settings (0 means: decide from the CPUs this process may use)."""
    limits = cpu_limits(cpus or None)
    usable = limits.usable
    workers = workers or usable
    threads = threads or max(1, usable // workers)
    return Sizing(cpus=usable, workers=workers, threads=threads, limits=limits)


def cpu_limits(setting: float | None = None, proc: Path = Path("/proc/self")) -> CpuLimits:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
    return CpuLimits(
        host=os.cpu_count() or affinity,
        affinity=affinity,
        quota=cgroup_quota(proc),
        setting=setting,
    )


def settle(settings: ServeSettings) -> ServeSettings:
    """Decide the sizing once (the master, before anything imports numpy), export the
    thread variables for the workers, and return the settings with both numbers filled."""
    from dataclasses import replace

    sizing = plan(settings.workers, settings.threads, settings.cpus)
    _process.decided = sizing
    export_thread_variables(sizing.threads)
    return replace(settings, workers=sizing.workers, threads=sizing.threads)


def decided(settings: ServeSettings) -> Sizing:
    """The sizing this service runs with (planned here when no master decided it: tests)."""
    if _process.decided is not None:
        return _process.decided
    return plan(settings.workers, settings.threads, settings.cpus)


def report(settings: ServeSettings) -> dict[str, Any]:
    """What ``/info`` says: the decision and threadpoolctl's view inside this worker."""
    return {**decided(settings).as_dict(), "thread_pools": thread_pools()}


# -- cgroups -----------------------------------------------------------------------------------


def cgroup_quota(proc: Path = Path("/proc/self")) -> float | None:
    """The CPU quota (in CPUs) of the process's cgroup, v2 or v1, or None if unlimited.

    The process's cgroup path (``proc/cgroup``) is mapped onto where the hierarchy is
    mounted (``proc/mountinfo``: a container sees its own cgroup as the mount's root),
    and every ancestor up to the mount point counts: a parent's quota binds its children.
    """
    try:
        memberships = (proc / "cgroup").read_text().splitlines()
        mounts = (proc / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    found: list[float] = []
    for mount_root, mount_point, version in _cgroup_mounts(mounts):
        path = _member_path(memberships, version)
        if path is None:
            continue
        if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
            relative = path[len(mount_root.rstrip("/")) :].strip("/")
        else:  # a cgroup namespace shows the process's own cgroup as the mount's root
            relative = ""
        quota = _walk_up(Path(mount_point), relative, version)
        if quota is not None:
            found.append(quota)
    return min(found) if found else None


def _cgroup_mounts(mountinfo: list[str]) -> list[tuple[str, str, str]]:
    """(root, mount point, "v1"|"v2") of the cgroup mounts that carry the cpu controller."""
    mounts = []
    for line in mountinfo:
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) < 5 or len(rest) < 3:
            continue
        root, point = _unescape(parts[3]), _unescape(parts[4])
        if rest[0] == "cgroup2":
            mounts.append((root, point, "v2"))
        elif rest[0] == "cgroup" and "cpu" in rest[2].split(","):
            mounts.append((root, point, "v1"))
    return mounts


def _member_path(memberships: list[str], version: str) -> str | None:
    for line in memberships:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if version == "v2" and hierarchy == "0" and controllers == "":
            return path
        if version == "v1" and "cpu" in controllers.split(","):
            return path
    return None


def _walk_up(mount_point: Path, relative: str, version: str) -> float | None:
    tightest: float | None = None
    folder = mount_point / relative if relative else mount_point
    while True:
        quota = _read_quota(folder, version)
        if quota is not None:
            tightest = quota if tightest is None else min(tightest, quota)
        if folder == mount_point or mount_point not in folder.parents:
            return tightest
        folder = folder.parent


def _read_quota(folder: Path, version: str) -> float | None:
    try:
        if version == "v2":
            quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        else:
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


# -- applying ----------------------------------------------------------------------------------


def export_thread_variables(threads: int) -> None:
    """Set the libraries' thread variables in this process, for the workers it forks."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def limit_threads(threads: int) -> None:
    """Cap the native thread pools already loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _process.applied_threads = threads


def native_threads() -> int:
    """Threads a native runtime of this worker may start (ONNX Runtime's intra-op pool)."""
    if _process.applied_threads is not None:
        return _process.applied_threads
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def thread_pools() -> list[dict[str, Any]]:
    """threadpoolctl's view of this process: each native pool and its thread count."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "num_threads", "prefix", "version")
    return [{key: pool.get(key) for key in keys} for pool in threadpool_info()]
