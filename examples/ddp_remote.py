"""Multi-node training from a bucket: every node reads the same bucket, keeps its own local cache, and
``DistributedSampler`` gives each rank its share of every epoch.

One command per node (here two "nodes" on one machine; on a cluster, the first node's address)::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port 29500 \\
        examples/ddp_remote.py s3://bucket/train --cache-dir /local/cache --storage-options '{"anon": true}'
    torchrun --nnodes 2 --node-rank 1 --nproc-per-node 1 --master-addr 127.0.0.1 --master-port 29500 \\
        examples/ddp_remote.py s3://bucket/train --cache-dir /local/cache --storage-options '{"anon": true}'

A small CNN is trained with DistributedDataParallel over gloo (CPU); rank 0 prints how many samples each
rank saw and each node's cache hit rate per epoch, and ``--out`` writes every rank's indices and its node's
cache misses per epoch as JSON.

``--sampler node`` uses :class:`dicomxray.NodeAffineSampler` instead of ``DistributedSampler``: each node keeps
its shard of the data set across epochs, so its cache hits from epoch 2 on.  A node's misses in an epoch are the
entries its cache gained during it (ranks wait for each other before and after each epoch); ``--loader plain``
measures them exactly, whereas a ``PrefetchSampler`` reads the next epoch's first batches during this one's tail.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from dicomxray import DicomXrayDataset, NodeAffineSampler
from dicomxray.data.prefetch import PrefetchSampler


def _json(text: str) -> object:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            return json.load(fh)
    return json.loads(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a URL prefix (s3://, gs://, az://, https://...) or a local folder")
    parser.add_argument("--storage-options", type=_json, default=None, help="fsspec options: JSON, or @file.json")
    parser.add_argument("--cache-dir", default=None, help="this node's local cache (default: no cache)")
    parser.add_argument("--remote-identity", choices=["request", "listing"], default="request")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sampler", choices=["distributed", "node"], default="distributed",
                        help="DistributedSampler, or NodeAffineSampler (each node keeps its shard)")
    parser.add_argument("--loader", choices=["prefetch", "plain"], default="prefetch",
                        help="a PrefetchSampler (read-ahead across batches and epochs) or a plain DataLoader")
    parser.add_argument("--out", default=None, help="rank 0 writes the indices every rank saw here (JSON)")
    args = parser.parse_args()

    dist.init_process_group("gloo")  # torchrun sets MASTER_ADDR/PORT, RANK and WORLD_SIZE
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        ds = DicomXrayDataset(args.url, size=args.size, cache=args.cache_dir, storage_options=args.storage_options,
                              remote_identity=args.remote_identity, image_dtype="uint8")
        sampler: DistributedSampler | NodeAffineSampler
        if args.sampler == "node":  # ranks_per_node: torchrun's LOCAL_WORLD_SIZE
            sampler = NodeAffineSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
        else:
            sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
        wrapped = sampler if args.loader == "plain" else PrefetchSampler(
            sampler, batch_size=args.batch_size, num_workers=args.num_workers, dataset=ds)
        loader = DataLoader(ds, batch_size=args.batch_size, num_workers=args.num_workers, sampler=wrapped)
        model = DistributedDataParallel(nn.Sequential(nn.Conv2d(1, 8, 5, stride=4), nn.ReLU(),
                                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        seen: list[list[int]] = []
        misses: list[int] = []  # entries this node's cache gained per epoch (every rank of a node counts the same)
        for epoch in range(args.epochs):
            sampler.set_epoch(epoch)
            dist.barrier()
            cached = _entries(ds)
            indices, t0 = [], time.perf_counter()
            for batch in loader:
                x = batch["image"].float().div_(255)
                loss = model(x).logsumexp(dim=1).mean()  # no labels needed to exercise the all-reduce
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                indices.extend(int(i) for i in batch["meta"]["index"])
            seen.append(indices)
            dist.barrier()  # the node's other ranks have finished the epoch too
            misses.append(_entries(ds) - cached)
            print(f"rank {rank}: epoch {epoch}: {len(indices)} samples in {time.perf_counter() - t0:.1f} s",
                  flush=True)
        gathered: list[object] = [None] * world
        dist.all_gather_object(gathered, {"rank": rank, "node": os.environ.get("GROUP_RANK"), "seen": seen,
                                          "misses": misses})
        if rank == 0:
            for entry in gathered:
                print(f"rank {entry['rank']} (node {entry['node']}): {[len(e) for e in entry['seen']]} samples")  # type: ignore[index]
            if ds.cache is not None:
                for node, rates in hit_rates(gathered).items():  # type: ignore[arg-type]
                    print(f"node {node} ({args.sampler}): cache hit rate per epoch "
                          + ", ".join(f"{r:.0%}" for r in rates))
            if args.out:
                with open(args.out, "w") as fh:
                    json.dump({"files": len(ds), "ranks": gathered}, fh)
    finally:
        dist.destroy_process_group()
    return 0


def _entries(ds: DicomXrayDataset) -> int:
    return len(list(ds.cache.entries())) if ds.cache is not None else 0


def hit_rates(ranks: list[dict]) -> dict[str, list[float]]:
    """Per node, per epoch: 1 - (entries its cache gained) / (samples its ranks read)."""
    out: dict[str, list[float]] = {}
    for node in sorted({r["node"] for r in ranks}):
        mine = [r for r in ranks if r["node"] == node]
        read = [sum(len(r["seen"][e]) for r in mine) for e in range(len(mine[0]["seen"]))]
        out[node] = [1 - m / n if n else 1.0 for m, n in zip(mine[0]["misses"], read, strict=True)]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
