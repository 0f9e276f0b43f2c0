from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dicomxray import (
    CorruptPixelDataError,
    DicomXrayDataset,
    Geometry,
    SourceFileNotFoundError,
    boxes_to_original,
    pipeline_config,
)
from dicomxray.labels import SiimCovid
from dicomxray.testing import chest_phantom, write_dicom, write_siim_csvs


def make_siim(root, boxes_per_image, *, size=(300, 400), mono1=()):
    """A tiny SIIM folder; each box holds a bright rectangle on a dark background."""
    images = []
    for i, boxes in enumerate(boxes_per_image):
        study, series, sop = f"{i:012x}", f"s{i:011x}", f"a{i:011x}"
        img = np.full(size, 300, np.uint16)
        for x0, y0, x1, y1 in boxes:
            img[int(y0):int(y1), int(x0):int(x1)] = 3800
        photometric = "MONOCHROME1" if i in mono1 else "MONOCHROME2"
        if i in mono1:
            img = (4095 - img).astype(np.uint16)
        write_dicom(root / "train" / study / series / f"{sop}.dcm", img, bits_stored=12, photometric=photometric,
                    study_uid=study, series_uid=series, sop_uid=sop, patient_id=f"P{i // 2}")
        images.append((study, sop, 1 if boxes else 0, boxes))  # typical with boxes, else negative
    return write_siim_csvs(root, images)


@pytest.fixture
def siim(tmp_path):
    return make_siim(tmp_path / "siim", [[(40, 60, 160, 200)], [], [(220, 30, 380, 120), (20, 150, 90, 280)], []],
                     mono1={1, 2})


def test_default_collate_works(siim):
    ds = DicomXrayDataset(siim / "train", size=64)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch["image"].shape == (4, 1, 64, 64) and batch["image"].dtype == torch.float32
    assert 0.0 <= float(batch["image"].min()) and float(batch["image"].max()) <= 1.0
    assert len(batch["meta"]["path"]) == 4
    assert ds.files == sorted(ds.files)


def test_three_channels(siim):
    ds = DicomXrayDataset(siim / "train", size=32, channels=3)
    x = ds[0]["image"]
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[2])


def test_empty_root_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceFileNotFoundError, match="no DICOM files"):
        DicomXrayDataset(tmp_path / "empty")


def _bright_bbox(img: torch.Tensor) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(img[0].numpy() > 0.5)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("letterbox", [False, True], ids=["square", "letterbox"])
def test_boxes_follow_resize(siim, letterbox):
    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), config=pipeline_config(size=128, letterbox=letterbox))
    s = ds[0]
    assert s["labels"].tolist() == [1] and s["image_label"].item() == 1
    assert np.allclose(_bright_bbox(s["image"]), s["boxes"][0].numpy(), atol=1.5)
    geom = Geometry.from_record(s["meta"]["geometry"])
    back = boxes_to_original(s["boxes"].numpy(), geom)
    assert np.allclose(back[0], [40, 60, 160, 200], atol=0.01)


def test_boxes_follow_horizontal_flip(siim):
    import albumentations as A

    from dicomxray.transforms import bbox_params

    flip = A.Compose([A.HorizontalFlip(p=1.0)], bbox_params=bbox_params())
    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=128, transform=flip)
    s = ds[0]
    assert np.allclose(_bright_bbox(s["image"]), s["boxes"][0].numpy(), atol=1.5)
    assert s["boxes"][0, 0] > 64  # the box moved to the right half


def test_monochrome1_boxes_are_bright_too(siim):
    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=128)
    s = ds[2]  # MONOCHROME1 file with two boxes
    img = s["image"][0].numpy()
    for x0, y0, x1, y1 in s["boxes"].numpy():
        assert img[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2].min() > 0.8


def test_detection_collate_and_augmentation_are_reproducible(siim):
    from dicomxray.transforms import train_transforms

    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=96, transform=train_transforms(96))

    def epoch(seed, workers):
        torch.manual_seed(seed)
        loader = DataLoader(ds, batch_size=2, num_workers=workers, shuffle=True, collate_fn=ds.collate)
        return [b["image"] for b in loader]

    a, b, c = epoch(0, 2), epoch(0, 2), epoch(1, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate)))
    assert batch["image"].shape == (4, 1, 96, 96) and len(batch["boxes"]) == 4


def test_skip_policy_with_a_truncated_file(siim):
    files = sorted((siim / "train").rglob("*.dcm"))
    bad = files[1]
    bad.write_bytes(bad.read_bytes()[:-4000])
    strict = DicomXrayDataset(siim / "train", size=32)
    with pytest.raises(CorruptPixelDataError, match=bad.name):
        strict[1]
    ds = DicomXrayDataset(siim / "train", size=32, on_error="skip")
    with pytest.warns(UserWarning, match="skipping"):  # the plain DataLoader: default collate, full batches
        batches = list(DataLoader(ds, batch_size=len(ds), num_workers=0))
    assert batches[0]["image"].shape[0] == len(ds)
    served = batches[0]["meta"]["index"].tolist()
    assert served[0] == 0 and served[1] in (0, 2, 3) and served[2:] == [2, 3]  # a readable sample stands in
    assert torch.equal(batches[0]["image"][1], ds[served[1]]["image"])
    assert [p for p, _ in ds.skipped()] == [str(bad)]
    assert "truncated" in ds.skipped()[0][1]


def test_skips_are_recorded_from_worker_processes(siim):
    files = sorted((siim / "train").rglob("*.dcm"))
    files[0].write_bytes(b"not dicom")
    ds = DicomXrayDataset(siim / "train", size=32, on_error="skip")
    sizes = [b["image"].shape[0] for b in DataLoader(ds, batch_size=2, collate_fn=ds.collate, num_workers=2)]
    assert sizes == [2] * (len(ds) // 2) and [p for p, _ in ds.skipped()] == [str(files[0])]


def test_skip_log_is_removed_with_the_dataset(siim):
    import gc

    files = sorted((siim / "train").rglob("*.dcm"))
    files[0].write_bytes(b"not dicom")
    ds = DicomXrayDataset(siim / "train", size=32, on_error="skip")
    with pytest.warns(UserWarning):
        ds[0]
    log = ds._skip_log.path if ds._skip_log is not None else None
    assert log is not None and os.path.exists(log)
    del ds
    gc.collect()
    assert not os.path.exists(log)


def test_skip_when_nothing_is_readable_is_an_error(tmp_path):
    (tmp_path / "a.dcm").write_bytes(b"not dicom")
    ds = DicomXrayDataset(tmp_path, size=32, on_error="skip")
    with pytest.warns(UserWarning), pytest.raises(SourceFileNotFoundError, match="no file of the data set"):
        ds[0]


def test_file_deleted_mid_epoch_is_a_clear_error(siim):
    ds = DicomXrayDataset(siim / "train", size=32)
    os.unlink(ds.files[3])
    with pytest.raises(SourceFileNotFoundError, match="not found"):
        ds[3]


def test_cache_serves_epoch_two_and_never_stale(siim, tmp_path):
    ds = DicomXrayDataset(siim / "train", size=48, cache=tmp_path / "cache")
    first = [ds[i]["image"] for i in range(len(ds))]
    again = [ds[i]["image"] for i in range(len(ds))]
    assert ds.cache.stats.hits == 4 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    path = ds.files[0]
    write_dicom(path, chest_phantom(300, 400, bits=12), bits_stored=12)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**6))
    changed = ds[0]["image"]
    assert not torch.equal(changed, first[0])
    other = DicomXrayDataset(siim / "train", config=pipeline_config(size=48, dtype="float32"), cache=tmp_path / "cache")
    assert other[1]["image"].shape == (1, 48, 48) and other.cache.stats.misses == 1


def test_dataset_pickles_small(siim, tmp_path):
    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=48, cache=tmp_path / "c")
    ds[0]
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000
    assert len(pickle.loads(blob)) == 4


def test_geometric_transform_without_box_handling_is_refused(siim):
    import albumentations as A

    with pytest.raises(ValueError, match="bbox_params"):
        DicomXrayDataset(siim / "train", labels=SiimCovid(siim), transform=A.Compose([A.HorizontalFlip(p=1.0)]))
    assert DicomXrayDataset(siim / "train", size=32, transform=A.Compose([A.HorizontalFlip(p=1.0)]))[0] is not None


def test_persistent_workers_keep_augmenting_differently_each_epoch(siim):
    from dicomxray.transforms import train_transforms

    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=64, transform=train_transforms(64))
    torch.manual_seed(3)
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True, collate_fn=ds.collate)
    first = next(iter(loader))["image"]
    second = next(iter(loader))["image"]  # same workers, next epoch: their generators moved on
    assert first.shape == second.shape == (4, 1, 64, 64)
    assert not torch.equal(first, second)
