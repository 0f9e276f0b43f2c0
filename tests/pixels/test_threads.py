"""The decode thread policy: every core for one decoder, one thread per worker when workers fill the cores."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from pydicom import uid

from dicomxray import DecodeConfig, Pipeline, PipelineConfig, load_xray
from dicomxray.pixels.decode import decode_frame
from dicomxray.pixels.decode._threads import available_cores, cgroup_cpu_limit, decode_threads
from dicomxray.testing import chest_phantom


@pytest.fixture
def j2k(write):
    return write(chest_phantom(384, 320, bits=12, seed=7), bits_stored=12, syntax=uid.JPEG2000Lossless)


def test_one_process_gets_every_core_it_may_run_on(j2k):
    cores = len(os.sched_getaffinity(0))
    assert available_cores() <= cores
    assert decode_threads() == available_cores()
    assert decode_frame(Pipeline().header(j2k)).threads == available_cores()


def test_ranks_on_one_node_share_the_cores(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun started two training processes on this node
    assert decode_threads() == max(1, available_cores() // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert decode_threads() == available_cores()


def test_the_config_overrides_the_policy_and_leaves_the_fingerprint_alone(j2k):
    assert load_xray(j2k, config=PipelineConfig(decode=DecodeConfig(threads=3))).pixels.shape == (384, 320)
    assert decode_frame(Pipeline().header(j2k), threads=3).threads == 3
    assert PipelineConfig(decode=DecodeConfig(threads=3)).fingerprint() == PipelineConfig().fingerprint()
    assert PipelineConfig(decode=DecodeConfig(frame=1)).fingerprint() != PipelineConfig().fingerprint()
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            DecodeConfig(threads=bad)  # type: ignore[arg-type]


def test_codecs_that_cannot_use_threads_are_given_one(write):
    path = write(chest_phantom(64, 64, bits=12), bits_stored=12, syntax=uid.JPEGLSLossless)
    assert decode_frame(Pipeline().header(path), threads=4).threads == 1


_AFFINITY = """
import os, sys
from dicomxray.pixels.decode._threads import decode_threads
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
print(decode_threads())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_affinity_is_respected():
    out = subprocess.run([sys.executable, "-c", _AFFINITY], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_cgroup_quotas_v2_and_v1_are_read(tmp_path):
    v2 = tmp_path / "v2"
    (v2 / "kubepods" / "pod").mkdir(parents=True)
    (v2 / "kubepods" / "cpu.max").write_text("250000 100000\n")
    (v2 / "kubepods" / "pod" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "self2").write_text("0::/kubepods/pod\n")
    assert cgroup_cpu_limit(v2, tmp_path / "self2") == 3  # 2.5 cores, rounded up, from the parent
    (v2 / "kubepods" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2, tmp_path / "self2") is None
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "docker" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu,cpuacct" / "docker" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self1").write_text("4:cpu,cpuacct:/docker\n3:memory:/docker\n")
    assert cgroup_cpu_limit(v1, tmp_path / "self1") == 1


class _ThreadsDataset:
    """Decodes a JPEG 2000 file and returns the threads the codec was given (run in DataLoader workers)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return decode_frame(Pipeline().header(self.path)).threads


def test_dataloader_workers_share_the_cores(j2k):
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(_ThreadsDataset(str(j2k)), batch_size=None, num_workers=2)
    got = {int(t) for t in loader}
    assert got == {max(1, available_cores() // 2)}


def _job_threads(_: int) -> int:
    return decode_threads()


def test_job_processes_share_the_cores():
    from dicomxray.jobs.tasks import run_jobs

    got = set(run_jobs(_job_threads, list(range(8)), workers=2, desc="t", progress=False))
    assert got == {max(1, available_cores() // 2)}
    assert decode_threads() == available_cores()  # the parent process keeps its cores


@pytest.mark.parametrize("syntax", [uid.JPEG2000Lossless, uid.JPEG2000], ids=["lossless", "lossy"])
def test_pixels_are_identical_with_one_and_two_threads(write, syntax):
    path = write(chest_phantom(700, 600, bits=12, seed=3), bits_stored=12, syntax=syntax)
    header = Pipeline().header(path)
    one = decode_frame(header, backend="imagecodecs", threads=1)
    two = decode_frame(header, backend="imagecodecs", threads=2)
    assert (one.threads, two.threads) == (1, 2)
    assert np.array_equal(one.array, two.array)


def test_no_decode_sets_openjpegs_process_wide_thread_count(write, monkeypatch):
    """OpenJPEG reads OPJ_NUM_THREADS under imagecodecs too (where it overrides numthreads=1) and every child
    process inherits it: a decode that set it would oversubscribe the DataLoader workers forked after it."""
    monkeypatch.delenv("OPJ_NUM_THREADS", raising=False)
    path = write(chest_phantom(700, 600, bits=12, seed=3), bits_stored=12, syntax=uid.JPEG2000Lossless)
    header = Pipeline().header(path)
    for backend, reduce in (("imagecodecs", 0), ("pillow", 0), ("pillow", 1)):
        decode_frame(header, backend=backend, threads=2, reduce=reduce)
        assert "OPJ_NUM_THREADS" not in os.environ, backend
    assert decode_frame(header, backend="pillow", threads=2).threads == 1  # Pillow's OpenJPEG: one thread


def test_real_film_pixels_are_identical_with_one_and_two_threads(samples):
    header = Pipeline().header(samples / "cr_rg3_j2k_lossless_mono1.dcm")
    assert np.array_equal(decode_frame(header, threads=1).array, decode_frame(header, threads=2).array)


def test_dask_workers_share_the_cores(tmp_path):
    pytest.importorskip("distributed")
    from dicomxray.jobs.distributed import connect, run_sharded

    with connect("local:2") as client:
        got = run_sharded(client, _job_threads, list(range(4)), job="t", token="t", manifest=tmp_path / "m",
                          shard_size=1, progress=False)
    assert set(got) == {max(1, available_cores() // 2)}
