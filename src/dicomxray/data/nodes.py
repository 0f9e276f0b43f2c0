"""A distributed sampler that keeps each node on its own shard of the data set, so a node-local cache hits.

Under ``DistributedSampler`` each epoch deals the whole shuffled data set out to the ranks again: a node gets a
new random ``1/N`` of the samples, most of which its local cache does not hold, and its cache only stops missing
once it holds the whole data set (N times the GETs and the disk across the cluster).  :class:`NodeAffineSampler`
draws the shards once, from the seed, and keeps them: node ``k`` reads shard ``k`` at every epoch, in a new order
each epoch, its ranks splitting it.  From epoch 2 on every read is a cache hit.  The price is less mixing: a
mini-batch holds samples of one shard only, and a node never sees the others (see ``docs/guide/remote.md``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sized

import numpy as np
from torch.utils.data import Sampler

__all__ = ["NodeAffineSampler"]


class NodeAffineSampler(Sampler[int]):
    """Each node keeps one shard of the data set across epochs and shuffles within it; its ranks split it.

    A drop-in for ``DistributedSampler`` (same ``num_replicas``, ``rank``, ``shuffle``, ``seed``,
    ``drop_last``, ``set_epoch``): each epoch every sample goes to exactly one rank, and every rank gets
    ``len(self)`` indices, padded with repeats of its node's shard (or, with ``drop_last``, a few samples of the
    shard left out, others at each epoch).  Ranks are numbered node by node, ``ranks_per_node`` per node, as
    ``torchrun`` numbers them.

    Parameters
    ----------
    dataset : sized or int
        The data set (only its length is used), or its length.
    num_replicas, rank : int, optional
        World size and this process's rank; by default those of the initialised ``torch.distributed`` group.
    ranks_per_node : int, optional
        Processes per node (``torchrun --nproc-per-node``); default ``$LOCAL_WORLD_SIZE`` (set by torchrun), else 1.
        Node ``rank // ranks_per_node`` reads shard ``rank // ranks_per_node``.
    shuffle : bool
        Shards are random draws of the data set (from ``seed``) and each epoch shuffles them (from ``seed`` and
        the epoch); ``False``: contiguous shards in the data set's order, read in that order.
    seed : int
        The same on every rank.
    drop_last : bool
        Leave samples out rather than pad, when the world size does not divide the data set.
    epoch : int
        The first epoch (:meth:`set_epoch` changes it).

    Raises
    ------
    ValueError
        No ``num_replicas``/``rank`` and no process group; a rank outside the world; ``ranks_per_node`` that does
        not divide the world size.
    """

    def __init__(self, dataset: Sized | int, *, num_replicas: int | None = None, rank: int | None = None,
                 ranks_per_node: int | None = None, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 epoch: int = 0) -> None:
        num_replicas, rank = _world(num_replicas, rank)
        if ranks_per_node is None:
            ranks_per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if ranks_per_node < 1 or num_replicas % ranks_per_node:
            raise ValueError(f"ranks_per_node={ranks_per_node} must divide num_replicas={num_replicas}")
        self.size = dataset if isinstance(dataset, int) else len(dataset)
        self.num_replicas, self.rank, self.ranks_per_node = num_replicas, rank, ranks_per_node
        self.num_nodes, self.node = num_replicas // ranks_per_node, rank // ranks_per_node
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, epoch
        if drop_last:
            self.num_samples = self.size // num_replicas
        else:
            self.num_samples = math.ceil(self.size / num_replicas)
        #: This node's samples, the same at every epoch (the whole data set split in ``num_nodes`` near-equal parts).
        self.shard: list[int] = self._shard()

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed % 2**63, *key])

    def _shard(self) -> list[int]:
        order = self._rng(0).permutation(self.size) if self.shuffle else np.arange(self.size)
        lo, hi = self.node * self.size // self.num_nodes, (self.node + 1) * self.size // self.num_nodes
        return [int(i) for i in order[lo:hi]]

    def set_epoch(self, epoch: int) -> None:
        """The epoch to shuffle for (call it before each epoch, as with ``DistributedSampler``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def node_order(self) -> list[int]:
        """This epoch's indices for the whole node (its ranks take every ``ranks_per_node``-th one)."""
        wanted = self.num_samples * self.ranks_per_node
        source = self.shard or [int(i) for i in self._rng(0).permutation(self.size)]  # fewer samples than nodes
        if self.shuffle:
            source = [source[i] for i in self._rng(1, self.epoch % 2**63, self.node).permutation(len(source))]
        if wanted > len(source):  # pad with repeats of the node's own samples (cached already)
            source = (source * math.ceil(wanted / max(1, len(source))))[:wanted]
        return source[:wanted]

    def __iter__(self) -> Iterator[int]:
        return iter(self.node_order()[self.rank % self.ranks_per_node :: self.ranks_per_node])


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """``num_replicas`` and ``rank`` as given, else the process group's."""
    if num_replicas is None or rank is None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("give num_replicas and rank, or initialise torch.distributed first")
        num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
        rank = dist.get_rank() if rank is None else rank
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, {num_replicas - 1}] (num_replicas={num_replicas}), got {rank}")
    return num_replicas, rank
