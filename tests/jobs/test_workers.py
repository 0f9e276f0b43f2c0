"""One automatic default for worker processes: the cores this process may use (CPU affinity AND cgroup quota),
wherever a count is not given; an explicit count stays the caller's."""

from __future__ import annotations

import concurrent.futures.process as process
import os

import pytest

from dicomxray.cli import main
from dicomxray.jobs.pool import worker_count
from dicomxray.pixels.decode import _threads
from dicomxray.testing import chest_phantom, write_dicom


@pytest.fixture
def machine(monkeypatch):
    """A 64-CPU host seen from a process pinned to ``cpus`` CPUs under a cgroup quota of ``quota`` cores;
    returns the list of pool sizes started."""
    started: list[int] = []
    real_init = process.ProcessPoolExecutor.__init__

    def spy(self, max_workers=None, *args, **kwargs):
        started.append(max_workers)
        real_init(self, max_workers, *args, **kwargs)

    monkeypatch.setattr(process.ProcessPoolExecutor, "__init__", spy)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)

    def set_machine(cpus: int, quota: int | None) -> list[int]:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
        monkeypatch.setattr(_threads, "_quota", lambda: quota)
        return started

    return set_machine


def test_the_default_is_affinity_capped_by_the_cgroup_quota(machine):
    machine(8, 3)
    assert worker_count(None) == 3
    assert worker_count(None, 2) == 2  # never more processes than items
    assert worker_count(None, 500, pool_min=1000) == 1
    machine(2, None)
    assert worker_count(None) == 2


def test_an_explicit_count_is_the_callers(machine):
    machine(1, 1)
    assert worker_count(6) == 6 and worker_count(0) == 1
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        worker_count(-1)


@pytest.fixture
def folder(tmp_path):
    for i in range(4):
        write_dicom(tmp_path / "in" / f"{i}.dcm", chest_phantom(32, 32, bits=12, seed=i), bits_stored=12)
    return tmp_path


def test_export_defaults_to_the_cores_it_may_use(folder, machine):
    started = machine(1, None)  # `taskset -c 0` on a 64-core host
    assert main(["export", str(folder / "in"), str(folder / "png"), "--size", "16", "--quiet"]) == 0
    assert started == []  # one core: rendered in this process, no pool of os.cpu_count() processes
    machine(8, 2)  # a 2-CPU container quota on an 8-CPU affinity
    assert main(["export", str(folder / "in"), str(folder / "png2"), "--size", "16", "--quiet"]) == 0
    assert started == [2]


def test_cache_build_and_index_default_to_the_cores_too(folder, machine, monkeypatch):
    started = machine(8, 2)
    assert main(["cache", "build", str(folder / "in"), "--cache-dir", str(folder / "c"), "--size", "16",
                 "--quiet"]) == 0
    assert started == [2]
    monkeypatch.setattr("dicomxray.index.build._POOL_MIN_FILES", 1)
    assert main(["index", str(folder / "in"), "-o", str(folder / "i.csv"), "--quiet"]) == 0
    assert started == [2, 2]  # the quota, not the 8 CPUs of the affinity
    assert main(["index", str(folder / "in"), "-o", str(folder / "j.csv"), "--quiet", "--workers", "3"]) == 0
    assert started == [2, 2, 3]
