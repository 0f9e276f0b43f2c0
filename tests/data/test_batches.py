"""Batches (``__getitems__``), remembered failures, the sampler's plan checked against the DataLoader's, and
read-ahead across the epoch boundary: local files only (the remote side is in test_remote_batches.py)."""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler

from dicomxray import CorruptPixelDataError, DicomXrayDataset, pipeline_config
from dicomxray.data.prefetch import Ahead, PrefetchSampler
from dicomxray.errors import LoaderWarning, SkipWarning
from dicomxray.pixels.pipeline import Pipeline, XrayImage
from dicomxray.testing import chest_phantom, write_dicom


class CountingReader:
    """A real pipeline that counts the reads of each file."""

    def __init__(self) -> None:
        self.plain = Pipeline(pipeline_config(size=24))
        self.reads: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def config(self):  # noqa: ANN201
        return self.plain.config

    def read(self, path: str) -> XrayImage:
        with self._lock:
            self.reads[Path(path).name] += 1
        return self.plain.read(path)


def _folder(root: Path, good: int, bad: tuple[int, ...] = ()) -> Path:
    for i in range(good):
        p = write_dicom(root / f"{i:03d}.dcm", chest_phantom(40, 48, bits=12, seed=i), bits_stored=12)
        if i in bad:
            p.write_bytes(p.read_bytes()[:-1500])  # truncated pixel data
    return root


@pytest.mark.parametrize("batched", [False, True], ids=["getitem", "getitems"])
def test_a_run_of_bad_files_is_read_once_per_pass(tmp_path: Path, batched: bool) -> None:
    bad = tuple(range(3, 15))  # a run of 12 bad files: each index of it used to try every one after it
    reader = CountingReader()
    ds = DicomXrayDataset(_folder(tmp_path, 18, bad), pipeline=reader, on_error="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two passes in this process: each bad file read at most once in each
            if batched:
                samples = ds.__getitems__(list(range(len(ds))))
            else:
                samples = [ds[i] for i in range(len(ds))]
            assert not {s["meta"]["index"] for s in samples} & set(bad)
    assert max(reader.reads[f"{i:03d}.dcm"] for i in bad) <= 2, reader.reads
    assert all(issubclass(w.category, SkipWarning) for w in caught) and caught
    assert all(reader.reads[f"{i:03d}.dcm"] >= 2 for i in range(18) if i not in bad)
    assert sorted(p for p, _ in ds.skipped()) == sorted(str(tmp_path / f"{i:03d}.dcm") for i in bad)


def test_getitems_keeps_order_and_reads_the_batch_at_once(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 8), size=24)
    order = [5, 1, 7, 0]
    batch = ds.__getitems__(order)
    assert [s["meta"]["index"] for s in batch] == order
    assert all(torch.equal(s["image"], ds[i]["image"]) for s, i in zip(batch, order, strict=True))
    # Local files are CPU-bound: read in order in this thread (the pool's hand-offs cost a cached epoch 2x);
    # a URL batch overlaps its requests in the pool (tests/data/test_remote_batches.py).
    assert ds._prefetch.hits == 0
    loaded = next(iter(DataLoader(ds, batch_size=4, sampler=order)))
    assert loaded["meta"]["index"].tolist() == order


def test_getitems_raises_the_error_naming_the_file(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 6, bad=(2,)), size=24)
    with pytest.raises(CorruptPixelDataError, match="002.dcm"):
        ds.__getitems__([0, 1, 2, 3])


def test_skip_substitutes_within_a_batch(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 6, bad=(2, 3)), size=24, on_error="skip")
    with pytest.warns(SkipWarning, match="002.dcm"):
        batch = next(iter(DataLoader(ds, batch_size=6)))
    served = batch["meta"]["index"].tolist()
    assert batch["image"].shape[0] == 6 and served[:2] == [0, 1] and served[4:] == [4, 5]
    assert not set(served) & {2, 3}


@pytest.mark.parametrize(("told", "real"), [((4, 2), (4, 0)), ((2, 0), (4, 0)), ((4, 0), (2, 0)), ((4, 0), (4, 0))],
                         ids=["workers", "batch", "batch-told-larger", "agree"])
def test_sampler_told_otherwise_than_the_dataloader_warns(tmp_path: Path, told: tuple[int, int],
                                                          real: tuple[int, int]) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 8), size=24)
    sampler = PrefetchSampler(SequentialSampler(ds), batch_size=told[0], num_workers=told[1], dataset=ds)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sum(len(b["image"]) for b in DataLoader(ds, batch_size=real[0], sampler=sampler,
                                                       num_workers=real[1])) == 8
    loader_warnings = [w for w in caught if issubclass(w.category, LoaderWarning)]
    assert len(loader_warnings) == (0 if told == real else 1)
    if told != real:
        assert "dataset.loader(" in str(loader_warnings[0].message)


def test_loader_builds_sampler_and_dataloader_together(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path, 8), size=24)
    loader = ds.loader(batch_size=3, num_workers=0, shuffle=True)
    assert isinstance(loader.sampler, PrefetchSampler) and loader.sampler.batch_size == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoaderWarning)
        assert sorted(i for b in loader for i in b["meta"]["index"].tolist()) == list(range(8))


def test_read_ahead_crosses_the_epoch_boundary() -> None:
    class Epochs(SequentialSampler):
        def __init__(self) -> None:
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return 8

        def __iter__(self):  # noqa: ANN204
            return iter([(i + self.epoch) % 8 for i in range(8)])

    sampler = PrefetchSampler(Epochs(), batch_size=2, num_workers=2, depth=4)
    sampler.set_epoch(0)
    first = list(sampler)
    last_of_worker_1 = first[6]
    assert isinstance(last_of_worker_1, Ahead)
    # batch 3 (worker 1) announces its batch's rest, then worker 1's first batch of epoch 1 (order shifted by 1)
    assert last_of_worker_1.ahead == (7, 3, 4, 7)
    sampler.set_epoch(1)
    assert [int(i) for i in sampler] == [(i + 1) % 8 for i in range(8)]  # the order drawn ahead is the epoch's
