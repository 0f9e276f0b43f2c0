"""NodeAffineSampler's partition: each node keeps one shard of the data set across epochs, its ranks split it,
every sample goes to exactly one rank per epoch, every rank gets as many indices, and all of it follows the seed."""

from __future__ import annotations

from collections import Counter

import pytest
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from dicomxray.data import NodeAffineSampler, PrefetchSampler


def _epoch(n: int, world: int, per_node: int, epoch: int, **options: object) -> list[list[int]]:
    """Every rank's indices for ``epoch`` (ranks numbered node by node, as torchrun numbers them)."""
    out = []
    for rank in range(world):
        sampler = NodeAffineSampler(n, num_replicas=world, rank=rank, ranks_per_node=per_node, **options)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


@pytest.mark.parametrize(("n", "world", "per_node"), [(48, 4, 2), (12, 2, 1), (30, 6, 3), (40, 4, 1)])
def test_a_node_keeps_its_shard_and_each_sample_goes_to_one_rank(n: int, world: int, per_node: int) -> None:
    shards = None
    orders = []
    for epoch in range(4):
        ranks = _epoch(n, world, per_node, epoch, seed=7)
        assert [len(r) for r in ranks] == [n // world] * world
        assert sorted(i for r in ranks for i in r) == list(range(n))  # a partition of the data set
        nodes = [frozenset(i for r in ranks[k : k + per_node] for i in r) for k in range(0, world, per_node)]
        assert shards is None or nodes == shards  # the same shard on each node, every epoch
        shards = nodes
        orders.append(ranks)
    assert all(len(s) == n // (world // per_node) for s in shards)
    assert orders[0] != orders[1]  # shuffled within the shard at each epoch
    assert sorted(shards[0]) != list(range(len(shards[0])))  # shards are random draws, not ranges of the order


@pytest.mark.parametrize("drop_last", [False, True])
def test_uneven_sizes_pad_or_drop_like_distributed_sampler(drop_last: bool) -> None:
    n, world, per_node = 23, 4, 2
    for epoch in range(3):
        ranks = _epoch(n, world, per_node, epoch, drop_last=drop_last)
        reference = [len(DistributedSampler(range(n), world, r, drop_last=drop_last)) for r in range(world)]
        assert [len(r) for r in ranks] == reference  # equal lengths, as DistributedSampler's
        counts = Counter(i for r in ranks for i in r)
        if drop_last:
            assert max(counts.values()) == 1 and len(counts) == 20  # 3 left out this epoch
        else:
            assert set(counts) == set(range(n)) and sum(counts.values()) == 24  # one repeat pads the set
        for k in (0, 2):  # a node's padding or dropping stays within its shard
            assert {i for r in ranks[k : k + per_node] for i in r} <= _shard(n, world, per_node, k // per_node)
    if drop_last:  # a different few left out at each epoch, so no sample is never seen
        seen = {i for epoch in range(6) for r in _epoch(n, world, per_node, epoch, drop_last=True) for i in r}
        assert seen == set(range(n))


def _shard(n: int, world: int, per_node: int, node: int) -> set[int]:
    return set(NodeAffineSampler(n, num_replicas=world, rank=node * per_node, ranks_per_node=per_node).shard)


def test_deterministic_from_the_seed() -> None:
    a = _epoch(50, 4, 2, 3, seed=1)
    assert a == _epoch(50, 4, 2, 3, seed=1)
    assert a != _epoch(50, 4, 2, 3, seed=2)
    plain = _epoch(8, 2, 1, 0, shuffle=False)
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7]]  # no shuffle: contiguous shards in data set order


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="ranks_per_node"):
        NodeAffineSampler(10, num_replicas=4, rank=0, ranks_per_node=3)
    with pytest.raises(ValueError, match="rank"):
        NodeAffineSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        NodeAffineSampler(10, rank=0)  # no process group and no num_replicas


def test_tiny_data_set_pads_from_the_whole_set() -> None:
    ranks = _epoch(1, 4, 2, 0)
    assert ranks == [[0]] * 4  # 1 sample, 4 ranks: as DistributedSampler, the one sample repeated


def test_with_prefetch_sampler_and_a_data_loader() -> None:
    sampler = NodeAffineSampler(range(20), num_replicas=2, rank=1, seed=3)
    wrapped = PrefetchSampler(sampler, batch_size=4)
    wrapped.set_epoch(5)
    expected = list(NodeAffineSampler(range(20), num_replicas=2, rank=1, seed=3, epoch=5))
    assert [int(i) for i in wrapped] == expected
    assert sorted(int(i) for b in DataLoader(list(range(20)), batch_size=4, sampler=sampler) for i in b) == sorted(expected)


def test_exported_from_the_package() -> None:
    import dicomxray

    assert dicomxray.NodeAffineSampler is NodeAffineSampler
