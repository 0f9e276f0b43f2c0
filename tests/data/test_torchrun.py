"""Two torchrun launches on localhost acting as two nodes (--nnodes 2, gloo) read one bucket (moto's S3 server),
each with its own local cache, under DistributedSampler: every sample is seen exactly once per epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from dicomxray import XrayCache  # noqa: E402
from dicomxray.testing import chest_phantom, write_dicom  # noqa: E402
from remote_servers import free_port, make_bucket, moto_server, s3_options, upload  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ddp_remote.py"


@pytest.mark.parametrize("identity", ["request", "listing"])
def test_two_nodes_see_every_sample_once(tmp_path: Path, identity: str) -> None:
    data = tmp_path / "data"
    for i in range(12):  # a multiple of the world size: DistributedSampler pads a shorter set with repeats
        write_dicom(data / f"{i:02d}.dcm", chest_phantom(70, 80, bits=12, seed=i), bits_stored=12)
    with moto_server() as endpoint:
        make_bucket(endpoint, "ddp")
        upload(endpoint, data, "ddp/train")
        port, out = free_port(), tmp_path / "seen.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        launches = [
            subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
                 "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
                 str(SCRIPT), "s3://ddp/train", "--storage-options", json.dumps(s3_options(endpoint)),
                 "--cache-dir", str(tmp_path / f"node{node}-cache"), "--remote-identity", identity,
                 "--size", "32", "--batch-size", "2", "--num-workers", "2", "--epochs", "2", "--out", str(out)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for node in (0, 1)]
        logs = [p.communicate(timeout=240)[0] for p in launches]
        assert [p.returncode for p in launches] == [0, 0], "\n".join(log[-3000:] for log in logs)
    result = json.loads(out.read_text())
    assert result["files"] == 12 and {r["node"] for r in result["ranks"]} == {"0", "1"}
    for epoch in (0, 1):
        per_rank = [r["seen"][epoch] for r in result["ranks"]]
        assert [len(s) for s in per_rank] == [6, 6]
        assert sorted(i for s in per_rank for i in s) == list(range(12))  # every sample exactly once
    for node, rank in ((0, result["ranks"][0]), (1, result["ranks"][1])):
        cache = XrayCache(tmp_path / f"node{node}-cache")
        assert cache.verify()["corrupt"] == 0
        assert len(list(cache.entries())) == len({i for s in rank["seen"] for i in s})  # only its own samples
