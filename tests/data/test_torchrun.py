"""Two torchrun launches on localhost acting as two nodes (--nnodes 2, gloo) read one bucket (moto's S3 server,
or a plain HTTP server), each with its own local cache: every sample is seen exactly once per epoch, and under
NodeAffineSampler (not under DistributedSampler) a node's cache hits on every read of epoch 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch.utils.data.distributed import DistributedSampler

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from dicomxray import XrayCache  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import file_server, free_port, make_bucket, moto_server, s3_options, upload  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ddp_remote.py"


def _two_nodes(url: str, tmp_path: Path, *options: str) -> dict:
    """Run the example as two torchrun nodes of one process each, node ``k`` caching in ``tmp_path/node{k}-cache``;
    rank 0's JSON report."""
    port, out = free_port(), tmp_path / "seen.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launches = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
             "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
             str(SCRIPT), url, "--cache-dir", str(tmp_path / f"node{node}-cache"), "--out", str(out), *options],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in (0, 1)]
    logs = [p.communicate(timeout=240)[0] for p in launches]
    assert [p.returncode for p in launches] == [0, 0], "\n".join(log[-3000:] for log in logs)
    return json.loads(out.read_text())


@pytest.mark.parametrize("identity", ["request", "listing"])
def test_two_nodes_see_every_sample_once(tmp_path: Path, identity: str) -> None:
    data = tmp_path / "data"
    for i in range(12):  # a multiple of the world size: DistributedSampler pads a shorter set with repeats
        write_dicom(data / f"{i:02d}.dcm", chest_phantom(70, 80, bits=12, seed=i), bits_stored=12)
    with moto_server() as endpoint:
        make_bucket(endpoint, "ddp")
        upload(endpoint, data, "ddp/train")
        result = _two_nodes("s3://ddp/train", tmp_path, "--storage-options", json.dumps(s3_options(endpoint)),
                            "--remote-identity", identity, "--size", "32", "--batch-size", "2", "--num-workers", "2",
                            "--epochs", "2")
    assert result["files"] == 12 and {r["node"] for r in result["ranks"]} == {"0", "1"}
    for epoch in (0, 1):
        per_rank = [r["seen"][epoch] for r in result["ranks"]]
        assert [len(s) for s in per_rank] == [6, 6]
        assert sorted(i for s in per_rank for i in s) == list(range(12))  # every sample exactly once
    for node, rank in ((0, result["ranks"][0]), (1, result["ranks"][1])):
        cache = XrayCache(tmp_path / f"node{node}-cache")
        assert cache.verify()["corrupt"] == 0
        seen = {i for s in rank["seen"] for i in s}
        following = DistributedSampler(range(12), num_replicas=2, rank=node, shuffle=True, seed=0)
        following.set_epoch(2)  # the last epoch's tail reads the first samples of the next one ahead
        assert len(seen) <= len(list(cache.entries())) <= len(seen | set(following))  # only its own samples


def test_a_node_affine_sampler_keeps_node_caches_hitting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(16):
        write_dicom(data / f"{i:02d}.dcm", chest_phantom(24, 24, bits=12, seed=i), bits_stored=12)
    rates = {}
    with file_server(data) as server:
        for sampler in ("distributed", "node"):
            run = tmp_path / sampler
            result = _two_nodes(server.url + "/", run, "--sampler", sampler, "--loader", "plain", "--size", "16",
                                "--batch-size", "4", "--num-workers", "0", "--epochs", "3")
            ranks = result["ranks"]
            for epoch in range(3):
                assert sorted(i for r in ranks for i in r["seen"][epoch]) == list(range(16))  # each sample once
            assert [r["misses"][0] for r in ranks] == [8, 8]  # epoch 1: every read a miss
            rates[sampler] = [1 - sum(r["misses"][e] for r in ranks) / 16 for e in range(3)]
            if sampler == "node":  # a node reads the same 8 samples at every epoch, in a new order
                assert all({*r["seen"][e]} == {*r["seen"][0]} for r in ranks for e in range(3))
                assert any(r["seen"][1] != r["seen"][0] for r in ranks)
    assert rates["node"][1:] == [1.0, 1.0]  # epochs 2 and 3: every read a hit
    assert rates["distributed"][1] < 0.9  # a new random half per node: about half of epoch 2 misses
