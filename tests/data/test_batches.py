"""Batches (``__getitems__``), remembered failures, the sampler's plan checked against the DataLoader's, and
read-ahead across the epoch boundary: local files only (the remote side is in test_remote_batches.py)."""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler, default_collate

from dicomxray import CorruptPixelDataError, DicomXrayDataset, XrayCache, pipeline_config
from dicomxray.data.batches import ready_collate
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


# ---------------------------------------------------------------- the batch path (issue 26)
class _Labels:
    """Boxes, a class, multi-labels and instance masks for every film of a folder."""

    classes = ("negative", "positive")
    box_classes = ("background", "finding")
    multilabel_classes = ("a", "b", "c")

    def __init__(self, names: list[str], shape: tuple[int, int]) -> None:
        from dicomxray.labels import ArrayMasks, Target

        self.targets = {}
        for n, name in enumerate(names):
            masks = np.zeros((1, *shape), np.uint8)
            masks[0, 5 + n : 25 + n, 8:30] = 1
            self.targets[name] = Target(boxes=np.array([[8, 5 + n, 30, 25 + n]], np.float32),
                                        box_labels=np.ones(1, np.int64), image_label=n % 2,
                                        image_labels=np.array([1, np.nan, n % 2], np.float32),
                                        masks=ArrayMasks(masks), mask_label=1)

    def target(self, key: str):  # noqa: ANN201
        return self.targets.get(key)

    def keys(self) -> set[str]:
        return set(self.targets)


def _same(a: object, b: object, where: str = "sample") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for n, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _same(x, y, f"{where}[{n}]")
    else:
        assert a == b, where


def _flip():  # noqa: ANN202
    import albumentations as A

    from dicomxray.transforms import bbox_params

    return A.Compose([A.HorizontalFlip(p=1.0)], bbox_params=bbox_params())


TIERS = [pytest.param({}, id="plain"), pytest.param({"cache": "c"}, id="cache"),
         pytest.param({"cache": "c", "in_memory": True}, id="ram-tier")]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize(("render", "image_dtype", "channels"),
                         [("uint8", "float32", 1), ("float32", "float32", 1), ("uint8", "uint8", 1),
                          ("uint8", "uint8", 3), ("uint16", "float32", 3)])
@pytest.mark.parametrize("transform", [False, True], ids=["", "flip"])
@pytest.mark.parametrize("labelled", [True, False], ids=["labels", "no-labels"])
def test_a_batch_equals_its_samples_read_one_at_a_time(tmp_path: Path, tier: dict, render: str, image_dtype: str,
                                                       channels: int, transform: bool, labelled: bool) -> None:
    root = _folder(tmp_path / "imgs", 6)
    labels = _Labels([f"{i:03d}" for i in range(6)], (40, 48)) if labelled else None
    order = [4, 1, 5, 0, 2]

    def make() -> DicomXrayDataset:
        kw = {k: (tmp_path / v if k == "cache" else v) for k, v in tier.items()}
        return DicomXrayDataset(root, config=pipeline_config(size=(36, 32), dtype=render), labels=labels,
                                channels=channels, image_dtype=image_dtype,  # type: ignore[arg-type]
                                transform=_flip() if transform else None, **kw)

    one, batched = make(), make()
    for _ in range(2):  # cold (misses written to the cache, tier filled), then warm (hits)
        expected = [one[i] for i in order]
        got = batched.__getitems__(order)
        _same(expected, got)
        fields = {"image", "meta", "boxes", "labels", "image_label", "image_labels", "mask", "masks"}
        assert fields <= set(got[0]) if labelled else set(got[0]) == {"image", "meta"}
    if not transform:  # one allocation: the images are consecutive views of one tensor, handed on without a copy
        ready = ready_collate(got)
        assert ready["image"].data_ptr() == got[0]["image"].data_ptr()
        assert ready["image"].shape == (len(order), channels, 36, 32)
        _same(default_collate(got), ready)
        _same(DicomXrayDataset.collate(expected), DicomXrayDataset.collate(got))
        if labelled:  # the masks too, through either collate
            assert ready["mask"].data_ptr() == got[0]["mask"].data_ptr()
            assert DicomXrayDataset.collate(got)["mask"].data_ptr() == got[0]["mask"].data_ptr()
    if "cache" in tier and not tier.get("in_memory"):
        assert batched.cache is not None and batched.cache.stats.hits == 2 * len(order)  # the first dataset wrote them


def test_the_batch_read_goes_into_one_allocation(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path / "imgs", 4), size=24, cache=tmp_path / "c", image_dtype="uint8")
    ds.__getitems__([0, 1, 2, 3])  # written
    batch = ds.__getitems__([3, 2, 1, 0])  # read: hits straight into the batch's tensor
    base = batch[0]["image"].data_ptr()
    assert [s["image"].data_ptr() - base for s in batch] == [n * 24 * 24 for n in range(4)]
    assert [s["meta"]["index"] for s in batch] == [3, 2, 1, 0]
    batch[0]["image"].zero_()  # nothing written into a batch reaches the cache
    assert torch.equal(ds.__getitems__([3])[0]["image"], ds[3]["image"]) and ds[3]["image"].any()


def test_get_reads_a_hit_into_the_buffer_given(tmp_path: Path) -> None:
    path = _folder(tmp_path / "imgs", 1) / "000.dcm"
    cache = XrayCache(tmp_path / "c")
    config = pipeline_config(size=16)
    first = cache.load(path, config)
    buf = np.zeros((2, 16, 16), np.uint8)
    hit = cache.get(path, config, out=buf[1])
    assert hit is not None and hit.pixels.ctypes.data == buf[1].ctypes.data and np.array_equal(buf[1], first.pixels)
    other = cache.get(path, config, out=np.zeros((16, 16), np.float32))  # not the entry's dtype: memory of its own
    assert other is not None and other.pixels.dtype == np.uint8 and np.array_equal(other.pixels, first.pixels)


@pytest.mark.parametrize("kw", [pytest.param({"cache": True}, id="cache"), pytest.param({}, id="plain")])
def test_a_batch_with_bad_files_equals_its_samples(tmp_path: Path, kw: dict) -> None:
    root = _folder(tmp_path / "imgs", 8, bad=(2, 3))
    extra = {"cache": tmp_path / "c"} if kw else {}

    def make() -> DicomXrayDataset:
        return DicomXrayDataset(root, size=24, on_error="skip", **extra)

    one, batched = make(), make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkipWarning)
        for _ in range(2):
            _same([one[i] for i in range(8)], batched.__getitems__(list(range(8))))


@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("labelled", [True, False], ids=["labels", "no-labels"])
def test_the_loader_hands_on_the_batch_as_default_collate_would(tmp_path: Path, workers: int, labelled: bool) -> None:
    labels = _Labels([f"{i:03d}" for i in range(6)], (40, 48)) if labelled else None
    ds = DicomXrayDataset(_folder(tmp_path / "imgs", 6), size=24, cache=tmp_path / "c", labels=labels)
    plain = list(DataLoader(ds, batch_size=3))
    for _ in range(2):
        got = list(ds.loader(batch_size=3, num_workers=workers, persistent_workers=False))
        assert len(got) == len(plain)
        for a, b in zip(plain, got, strict=True):
            _same(a, b)


def test_keep_ratio_batches_are_built_one_at_a_time(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path / "imgs", 3), config=pipeline_config(size=30, keep_ratio=True))
    _same([ds[i] for i in range(3)], ds.__getitems__([0, 1, 2]))


def test_ready_collate_copies_what_it_did_not_build() -> None:
    table = torch.arange(24, dtype=torch.float32).view(4, 1, 2, 3)  # a user's rows: consecutive views of one tensor
    batch = [{"image": table[n], "index": n} for n in range(4)]
    out = ready_collate(batch)
    _same(default_collate(batch), out)
    out["image"].zero_()
    assert table.sum() == 276  # a copy: writing into the batch does not reach the user's tensor


def test_a_batch_without_labels_has_its_meta_in_one_allocation_per_field(tmp_path: Path) -> None:
    ds = DicomXrayDataset(_folder(tmp_path / "imgs", 4), size=24, cache=tmp_path / "c")
    ds.__getitems__([0, 1, 2, 3])  # written
    batch = ds.__getitems__([3, 2, 1, 0])
    ready = ready_collate(batch)
    for key in ("original_size", "geometry"):  # handed on as the tensor the samples' fields are views of
        assert ready["meta"][key].data_ptr() == batch[0]["meta"][key].data_ptr()
    _same(default_collate(batch), ready)
    batch[0]["meta"]["geometry"].zero_()  # a sample's meta is its own: nothing written reaches the next read
    _same(ds[3]["meta"], ds.__getitems__([3])[0]["meta"])
    assert ds[3]["meta"]["geometry"].any()


def _part(batch: list[dict], hold: str) -> object:
    """What a caller keeps of a batch: the samples, one image, an array of one, the collated batch, a storage..."""
    if hold == "samples":
        return batch
    image = batch[1]["image"]
    if hold == "sent":  # moved to shared memory for another process (a queue, a worker's transfer): nothing held here
        image.share_memory_()
        return None
    return {"image": image, "array": image.numpy(), "collated": ready_collate(batch)["image"],
            "storage": image.untyped_storage(), "meta-less row": image[0, 0]}[hold]


@pytest.mark.parametrize("hold", ["samples", "image", "array", "collated", "storage", "meta-less row", "sent"])
@pytest.mark.parametrize("image_dtype", ["uint8", "float32"])
def test_a_batch_buffer_is_written_again_only_when_nothing_holds_it(tmp_path: Path, hold: str, image_dtype: str) -> None:
    ds = DicomXrayDataset(_folder(tmp_path / "imgs", 4), size=24, cache=tmp_path / "c",
                          image_dtype=image_dtype)  # type: ignore[arg-type]  # float32: converted into a buffer too
    ds.__getitems__([0, 1, 2, 3])  # written
    batch = ds.__getitems__([0, 1, 2, 3])
    kept = _part(batch, hold)
    ptr = batch[0]["image"].data_ptr()
    expected = [ds[i]["image"].clone() for i in range(4)]
    del batch
    for _ in range(6):  # every later batch in memory of its own while anything of the first is alive
        again = ds.__getitems__([3, 2, 1, 0])
        assert again[0]["image"].data_ptr() != ptr
    if hold == "samples":  # untouched by the later batches
        assert all(torch.equal(s["image"], e) for s, e in zip(kept, expected, strict=True))  # type: ignore[call-overload]
    del kept, again
    reused = ds.__getitems__([3, 2, 1, 0])
    assert reused[0]["image"].data_ptr() == ptr or hold != "samples"  # nothing holds it: written again
    _same(reused, [ds[i] for i in [3, 2, 1, 0]])
