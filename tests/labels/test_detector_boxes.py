"""Boxes a detector accepts: after augmentation and clipping, no zero-sized box reaches the target."""

from __future__ import annotations

import numpy as np
import pytest

A = pytest.importorskip("albumentations")

from dicomxray.transforms import bbox_params, val_transforms  # noqa: E402

IMAGE = np.zeros((256, 256), np.uint8)


@pytest.mark.parametrize("box", [
    pytest.param([255.9, 6.4, 300, 32], id="a sliver at the border"),
    pytest.param([255.5, 6.4, 300, 32.4], id="half a pixel after clipping"),
])
def test_boxes_below_min_size_are_dropped_with_their_label(box):
    # before: [255.9, 6.4, 256, 32] came back (0.1 px wide), labels kept in step
    out = val_transforms(256)(image=IMAGE, bboxes=np.array([box, [10, 10, 60, 60]]), labels=np.array([3, 5]))
    assert np.asarray(out["bboxes"]).tolist() == [[10, 10, 60, 60]] and list(out["labels"]) == [5]


def test_min_size_is_configurable_and_never_zero():
    shift = A.Compose([A.Affine(translate_px={"x": 50, "y": 0}, p=1.0)], bbox_params=bbox_params(min_size=8))
    out = shift(image=IMAGE, bboxes=np.array([[200, 10, 220, 60], [100, 10, 160, 60]]), labels=np.array([1, 2]))
    boxes = np.asarray(out["bboxes"]).reshape(-1, 4)
    assert list(out["labels"]) == [2] and np.all(boxes[:, 2:] - boxes[:, :2] >= 8)  # [250, 10, 256, 60]: 6 px wide
    with pytest.raises(ValueError, match="min_size"):
        bbox_params(min_size=0)


def test_dataset_targets_have_positive_size(tmp_path):
    from dicomxray import DicomXrayDataset
    from dicomxray.labels import SiimCovid
    from dicomxray.testing import make_siim_dataset

    siim = tmp_path / "siim"
    make_siim_dataset(siim, studies=4, size=(128, 160))
    push = A.Compose([A.Affine(translate_percent={"x": 0.45, "y": 0.0}, p=1.0)], bbox_params=bbox_params(), seed=0)
    ds = DicomXrayDataset(siim / "train", labels=SiimCovid(siim), size=64, transform=push)
    for i in range(len(ds)):
        s = ds[i]
        b = s["boxes"].numpy()
        assert len(b) == len(s["labels"]) and np.all(b[:, 2] - b[:, 0] >= 1) and np.all(b[:, 3] - b[:, 1] >= 1)
