"""Two DDP ranks (gloo, CPU) reading one shared cache directory at once."""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from dicomxray import DicomXrayDataset, XrayCache, read_xray
from dicomxray.testing import chest_phantom, write_dicom


def _rank_main(rank: int, world: int, root: str, cache: str, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        ds = DicomXrayDataset(root, size=64, cache=cache)
        seen = []
        for epoch in range(2):
            sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
            sampler.set_epoch(epoch)
            for batch in DataLoader(ds, batch_size=2, sampler=sampler, num_workers=1):
                for idx, img in zip(batch["meta"]["index"].tolist(), batch["image"], strict=True):
                    seen.append([epoch, idx, float(img.sum())])
        gathered: list = [None] * world
        dist.all_gather_object(gathered, seen)
        if rank == 0:
            with open(out, "w") as fh:
                json.dump(gathered, fh)
    finally:
        dist.destroy_process_group()


def test_two_ranks_share_one_cache(tmp_path):
    root = tmp_path / "data"
    for i in range(6):
        write_dicom(root / f"{i}.dcm", chest_phantom(120, 150, bits=12, seed=i), bits_stored=12)
    cache, out = tmp_path / "cache", tmp_path / "out.json"
    mp.start_processes(_rank_main, args=(2, str(root), str(cache), str(tmp_path / "store"), str(out)),
                       nprocs=2, start_method="fork")
    gathered = json.loads(out.read_text())
    for epoch in (0, 1):
        indices = sorted(idx for rank in gathered for e, idx, _ in rank if e == epoch)
        assert indices == list(range(6))  # DistributedSampler covered the data set, no duplicates
    ds = DicomXrayDataset(root, size=64)
    for rank in gathered:
        for _, idx, total in rank:
            expected = torch.from_numpy(read_xray(ds.files[idx], 64).astype(np.float32) / 255).sum()
            assert abs(total - float(expected)) < 1e-2
    c = XrayCache(cache)
    assert len(list(c.entries())) == 6 and c.verify() == {"ok": 6, "corrupt": 0}
    assert not list(cache.rglob("*.tmp"))
