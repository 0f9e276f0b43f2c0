"""The prefetcher on its own (no storage needed): what the sampler announces, the thread pool's bounds, errors."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest

from dicomxray import SourceFileNotFoundError
from dicomxray.data.prefetch import Ahead, PrefetchConfig, Prefetcher, PrefetchSampler


def test_prefetch_sampler_announces_what_the_same_worker_reads_next() -> None:
    order = list(range(100, 120))
    out = list(PrefetchSampler(order, batch_size=4, num_workers=2, depth=7))
    assert [int(i) for i in out] == order
    first = out[0]
    assert isinstance(first, Ahead) and first.ahead == (101, 102, 103, 108, 109, 110, 111)  # rest, then batch 3
    assert out[4].ahead[:3] == (105, 106, 107) and not isinstance(out[1], Ahead)
    assert pickle.loads(pickle.dumps(first)).ahead == first.ahead


def test_prefetcher_runs_ahead_within_its_budget_and_reraises() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def read(i: int) -> np.ndarray:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if i == 3:
            raise SourceFileNotFoundError("x: gone", path="x")
        return np.zeros(1000, np.uint8)

    p: Prefetcher[np.ndarray] = Prefetcher(PrefetchConfig(threads=4, max_bytes=10_000))
    p.hint(range(20), read)
    time.sleep(0.2)
    assert peak[0] <= 4 and p._held <= 10_000
    assert p.take(0, read).nbytes == 1000 and p.hits == 1
    with pytest.raises(SourceFileNotFoundError):
        p.take(3, read)
    assert p.take(19, read).nbytes == 1000 and p.misses == 1  # never started (budget): read now
    clone = pickle.loads(pickle.dumps(p))
    assert clone.hits == 0 and clone.config == p.config


def test_prefetch_config_is_validated() -> None:
    with pytest.raises(ValueError, match="threads"):
        PrefetchConfig(threads=-1)
    with pytest.raises(ValueError, match="batch_size"):
        PrefetchSampler(range(3), batch_size=0)


@pytest.mark.parametrize("told", ["wrapper", "inner"])
def test_each_epoch_has_the_inner_sampler_order_whichever_sampler_is_told_the_epoch(told: str) -> None:
    from torch.utils.data.distributed import DistributedSampler

    inner = DistributedSampler(range(40), num_replicas=2, rank=0, shuffle=True, seed=0)
    sampler = PrefetchSampler(inner, batch_size=4, num_workers=2, depth=8)
    for epoch in range(3):
        (sampler if told == "wrapper" else inner).set_epoch(epoch)  # the usual training loop calls it on either
        reference = DistributedSampler(range(40), num_replicas=2, rank=0, shuffle=True, seed=0)
        reference.set_epoch(epoch)
        expected = list(reference)
        assert [int(i) for i in sampler] == expected, epoch
