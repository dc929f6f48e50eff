"""Worker and thread sizing (serving/sizing.py): the CPU quota read from cgroup files laid
out as the kernel lays them out (v2, v1, a container's namespaced view, nested limits),
the machine's own cgroup v1 hierarchy when it can be written, and the sizing rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipml.errors import ProjectError
from shipml.serving.settings import load_settings
from shipml.serving.sizing import CpuLimits, cgroup_quota, plan

V1_CPU = Path("/sys/fs/cgroup/cpu")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_proc(tmp_path: Path, cgroup: str, mountinfo: list[str]) -> Path:
    proc = tmp_path / "proc"
    write(proc / "cgroup", cgroup)
    write(proc / "mountinfo", "\n".join(mountinfo) + "\n")
    return proc


def test_cgroup_v2_quota_with_the_tightest_ancestor(tmp_path: Path) -> None:
    root = tmp_path / "sys" / "fs" / "cgroup"
    write(root / "cpu.max", "max 100000\n")
    write(root / "kubepods.slice" / "cpu.max", "250000 100000\n")  # the pod: 2.5 CPUs
    write(root / "kubepods.slice" / "pod1" / "cpu.max", "max 100000\n")
    write(root / "kubepods.slice" / "pod1" / "app" / "cpu.max", "400000 100000\n")
    proc = fake_proc(
        tmp_path,
        "0::/kubepods.slice/pod1/app\n",
        [f"35 24 0:30 / {root} rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate"],
    )
    assert cgroup_quota(proc) == 2.5


def test_cgroup_v2_unlimited_is_none(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    write(root / "cpu.max", "max 100000\n")
    write(root / "svc" / "cpu.max", "max 100000\n")
    proc = fake_proc(tmp_path, "0::/svc\n", [f"35 24 0:30 / {root} rw - cgroup2 cgroup2 rw"])
    assert cgroup_quota(proc) is None


def test_cgroup_v1_inside_a_docker_container(tmp_path: Path) -> None:
    """Docker on a v1 host: the container's cgroup is the mount's root, the path in
    /proc/self/cgroup is the host's (/docker/<id>)."""
    cpu = tmp_path / "sys" / "fs" / "cgroup" / "cpu,cpuacct"
    write(cpu / "cpu.cfs_quota_us", "150000\n")  # docker run --cpus 1.5
    write(cpu / "cpu.cfs_period_us", "100000\n")
    proc = fake_proc(
        tmp_path,
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/system.slice/docker.service\n",
        [
            f"700 690 0:31 /docker/abc {cpu} ro,nosuid - cgroup cgroup rw,cpu,cpuacct",
            "701 690 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory",
        ],
    )
    assert cgroup_quota(proc) == 1.5


def test_cgroup_v1_on_a_host_walks_up_to_the_parent(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu dir"  # mountinfo escapes the space as \040
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    write(cpu / "system.slice" / "cpu.cfs_quota_us", "50000\n")  # CPUQuota=50%
    write(cpu / "system.slice" / "cpu.cfs_period_us", "100000\n")
    write(cpu / "system.slice" / "app.service" / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "system.slice" / "app.service" / "cpu.cfs_period_us", "100000\n")
    escaped = str(cpu).replace(" ", "\\040")
    proc = fake_proc(
        tmp_path,
        "3:cpu:/system.slice/app.service\n",
        [f"30 24 0:27 / {escaped} rw - cgroup cgroup rw,cpu"],
    )
    assert cgroup_quota(proc) == 0.5


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path / "absent") is None
    proc = fake_proc(tmp_path, "0::/\n", ["35 24 0:30 / /nowhere rw - cgroup2 cgroup2 rw"])
    assert cgroup_quota(proc) is None


@pytest.mark.skipif(
    not os.access(V1_CPU / "cpu.cfs_quota_us", os.W_OK), reason="no writable cgroup v1 cpu"
)
def test_a_real_cgroup_quota_is_read_from_inside(tmp_path: Path) -> None:
    """A child cgroup of this machine's v1 cpu hierarchy with a 1.5-CPU quota: a process
    moved into it reads 1.5 and sizes itself to one worker."""
    group = V1_CPU / f"shipml-test-sizing-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("150000")
        code = (
            "import os, sys; open(sys.argv[1] + '/cgroup.procs', 'w').write(str(os.getpid()));"
            "from shipml.serving.sizing import cgroup_quota, plan;"
            "s = plan(); print(cgroup_quota(), s.cpus, s.workers, s.threads)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(group)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        assert out == ["1.5", "1", "1", "1"]
    finally:
        group.rmdir()


def test_sizing_rules() -> None:
    limits = CpuLimits(host=8, affinity=4, quota=2.5, setting=None)
    assert limits.usable == 2  # the quota binds; a fraction rounds down
    assert CpuLimits(host=8, affinity=4, quota=None, setting=None).usable == 4
    assert CpuLimits(host=8, affinity=4, quota=0.5, setting=None).usable == 1  # at least 1
    assert CpuLimits(host=8, affinity=4, quota=None, setting=3).usable == 3
    usable = len(os.sched_getaffinity(0))
    default = plan()
    assert (default.workers, default.threads) == (usable, 1)
    assert plan(workers=1).threads == usable  # one worker gets every CPU's thread
    assert plan(cpus=1).workers == 1
    manual = plan(workers=2, threads=3, cpus=1)  # set by hand: kept, and said
    assert (manual.workers, manual.threads) == (2, 3)
    assert "more threads than CPUs" in manual.describe()


def test_sizing_settings_from_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPML_WORKERS", "SHIPML_THREADS", "SHIPML_CPUS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.workers, settings.threads, settings.cpus) == (0, 0, 0)
    assert load_settings({"threads": 2, "cpus": 1.5}).cpus == 1.5
    monkeypatch.setenv("SHIPML_THREADS", "3")
    assert load_settings({"threads": 2}).threads == 3
    assert load_settings({"threads": 2}, threads=4).threads == 4
    monkeypatch.setenv("SHIPML_THREADS", "-1")
    with pytest.raises(ProjectError, match="SHIPML_THREADS"):
        load_settings()
