"""Targets for every task: multi-labels, masks (union and instances) and boxes through geometry, augmentation,
the sample, the collate and back to the original pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dicomxray import DicomXrayDataset, Geometry, pipeline_config
from dicomxray.data import masks_to_original_batch
from dicomxray.labels import ArrayMasks, Target
from dicomxray.pixels.geometry import mask_to_original
from dicomxray.testing import write_dicom

Rect = tuple[int, int, int, int]


@dataclass
class Labels:
    """A label source written for the tests: per key, a Target."""

    targets: dict[str, Target]
    classes: tuple[str, ...] = ("negative", "positive")
    box_classes: tuple[str, ...] = ("background", "finding")
    multilabel_classes: tuple[str, ...] | None = None

    def target(self, key: str) -> Target | None:
        return self.targets.get(key)

    def keys(self) -> set[str]:
        return set(self.targets)


@dataclass
class OldLabels:
    """A source written against 0.3's protocol: no multilabel_classes, no masks."""

    targets: dict[str, Target] = field(default_factory=dict)
    classes: tuple[str, ...] = ("negative", "positive")
    box_classes: tuple[str, ...] = ("background", "finding")

    def target(self, key: str) -> Target | None:
        return self.targets.get(key)

    def keys(self) -> set[str]:
        return set(self.targets)


def _image(root: Path, name: str, size: tuple[int, int], rects: list[Rect]) -> tuple[Path, np.ndarray]:
    """A dark film with bright rectangles, and the N x H x W instance masks of the same rectangles."""
    img = np.full(size, 300, np.uint16)
    masks = np.zeros((len(rects), *size), np.uint8)
    for n, (x0, y0, x1, y1) in enumerate(rects):
        img[y0:y1, x0:x1] = 3800
        masks[n, y0:y1, x0:x1] = 1
    return write_dicom(root / f"{name}.dcm", img, bits_stored=12), masks


def _mask_set(root: Path, films: dict[str, tuple[tuple[int, int], list[Rect]]], *, boxes: bool = False) -> Labels:
    targets = {}
    for name, (size, rects) in films.items():
        _, masks = _image(root, name, size, rects)
        b = np.asarray(rects, np.float32).reshape(-1, 4) if boxes else np.zeros((0, 4), np.float32)
        targets[name] = Target(boxes=b, box_labels=np.ones(len(b), np.int64), image_label=int(bool(rects)),
                               masks=ArrayMasks(masks), mask_label=1)
    return Labels(targets)


FILMS = {"a": ((301, 419), [(37, 61, 163, 207)]), "b": ((517, 389), [(250, 20, 381, 119), (3, 5, 9, 300)])}
MODES = [pytest.param(dict(letterbox=False), id="square"), pytest.param(dict(letterbox=True), id="letterbox"),
         pytest.param(dict(keep_ratio=True), id="keep-ratio")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [64, 100, 256])
def test_the_mask_lies_on_the_pixels_it_labels(tmp_path: Path, mode: dict, size: int) -> None:
    ds = DicomXrayDataset(tmp_path, labels=_mask_set(tmp_path, FILMS), config=pipeline_config(size=size, **mode))
    for s in (ds[0], ds[1]):
        bright = s["image"][0].numpy() > 0.5
        mask = s["mask"]
        assert mask.dtype == torch.uint8 and mask.shape == (1, *bright.shape) and set(mask.unique().tolist()) <= {0, 1}
        assert int((mask[0].numpy().astype(bool) != bright).sum()) <= 6  # a few ties on edges, never a shift
        assert torch.equal(s["masks"].amax(0), mask[0])
        for box, inst in zip(s["boxes"].numpy(), s["masks"].numpy(), strict=True):  # instance boxes from masks
            ys, xs = np.nonzero(inst)
            assert np.allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


@pytest.mark.parametrize("mode", MODES)
def test_a_predicted_mask_maps_back_to_the_original_pixels(tmp_path: Path, mode: dict) -> None:
    ds = DicomXrayDataset(tmp_path, labels=_mask_set(tmp_path, FILMS), config=pipeline_config(size=128, **mode))
    for i, truth in enumerate(ArrayMasks(m).arrays.any(0) for m in _truths(tmp_path)):
        s = ds[i]
        back = mask_to_original(s["mask"].float(), Geometry.from_record(s["meta"]["geometry"]))
        assert back.shape == truth.shape and back.dtype == bool  # Rows x Columns, never transposed
        assert (back & truth).sum() / (back | truth).sum() > 0.9
    if mode.get("keep_ratio"):
        return  # images of different shapes: no batch
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=ds.collate)))
    ds.target_transform = lambda t: {"mask": t["mask"]}  # instances differ in number: torch's collate takes the union
    plain = next(iter(DataLoader(ds, batch_size=2)))
    masks = masks_to_original_batch(batch["mask"].float(), batch["meta"])
    assert [m.shape for m in masks] == [(301, 419), (517, 389)]
    assert all(np.array_equal(a, b) for a, b in zip(masks, masks_to_original_batch(plain["mask"], plain["meta"]),
                                                      strict=True))


def _truths(root: Path) -> list[np.ndarray]:
    out = []
    for size, rects in FILMS.values():
        m = np.zeros((len(rects), *size), np.uint8)
        for n, (x0, y0, x1, y1) in enumerate(rects):
            m[n, y0:y1, x0:x1] = 1
        out.append(m)
    return out


def test_the_collate_stacks_each_field_once(tmp_path: Path) -> None:
    labels = _mask_set(tmp_path, FILMS)
    labels.multilabel_classes = ("effusion", "nodule", "edema")
    labels.targets["a"] = Target(**{**labels.targets["a"].__dict__,
                                    "image_labels": np.array([1, np.nan, 0], np.float32)})
    seen = []

    def target_transform(t: dict) -> dict:
        seen.append(set(t))
        return t

    ds = DicomXrayDataset(tmp_path, labels=labels, size=64, target_transform=target_transform)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=ds.collate)))
    assert seen[0] == {"boxes", "labels", "image_label", "image_labels", "mask", "masks"}
    assert batch["image_labels"].shape == (2, 3) and batch["image_labels"].dtype == torch.float32
    assert batch["image_labels"][0, 0] == 1 and torch.isnan(batch["image_labels"][0, 1])
    assert torch.isnan(batch["image_labels"][1]).all()  # a target without findings: every one unknown
    assert batch["mask"].shape == (2, 1, 64, 64) and batch["mask"].dtype == torch.uint8
    assert [len(b) for b in batch["boxes"]] == [1, 2] and [m.shape[0] for m in batch["masks"]] == [1, 2]


def test_a_source_without_new_fields_gives_the_samples_it_gave(tmp_path: Path) -> None:
    _image(tmp_path, "a", (80, 60), [(10, 10, 30, 40)])
    labels = OldLabels({"a": Target(boxes=np.array([[10, 10, 30, 40]], np.float32), box_labels=np.array([1]),
                                    image_label=1)})
    s = DicomXrayDataset(tmp_path, labels=labels, size=32)[0]
    assert set(s) == {"image", "meta", "boxes", "labels", "image_label"}


def test_albumentations_moves_the_masks_with_the_image_and_a_dropped_box_drops_its_instance(tmp_path: Path) -> None:
    import albumentations as A

    from dicomxray.transforms import bbox_params

    films = {"a": ((120, 200), [(10, 20, 60, 70), (150, 30, 190, 90)])}
    for boxes in (True, False):  # boxes given with the instances (paired), or taken around them
        root = tmp_path / str(boxes)
        left_half = A.Compose([A.HorizontalFlip(p=1.0), A.Crop(x_min=0, y_min=0, x_max=100, y_max=120)],
                              bbox_params=bbox_params())
        ds = DicomXrayDataset(root, labels=_mask_set(root, films, boxes=boxes), size=(120, 200),
                              transform=left_half)
        s = ds[0]
        bright = s["image"][0].numpy() > 0.5
        assert s["image"].shape == (1, 120, 100) and s["mask"].shape == (1, 120, 100)
        assert np.array_equal(s["mask"][0].numpy().astype(bool), bright)
        assert s["masks"].shape == (1, 120, 100) and s["labels"].tolist() == [1]  # the left instance went
        assert np.allclose(s["boxes"][0].numpy(), [10, 30, 50, 90], atol=1e-3)  # the right one, flipped
        assert np.array_equal(s["masks"][0].numpy().astype(bool), bright)


def test_a_mask_only_source_takes_a_transform_without_box_handling(tmp_path: Path) -> None:
    import albumentations as A

    ds = DicomXrayDataset(tmp_path, labels=_mask_set(tmp_path, {"a": ((120, 200), [(10, 20, 60, 70)])}),
                          size=(120, 200), transform=A.Compose([A.HorizontalFlip(p=1.0)]))
    s = ds[0]
    assert np.array_equal(s["mask"][0].numpy().astype(bool), s["image"][0].numpy() > 0.5)
    assert s["boxes"].tolist() == [[140.0, 20.0, 190.0, 70.0]]  # taken around the flipped instance
    with pytest.raises(ValueError, match="bbox_params"):  # a box source still needs it
        DicomXrayDataset(tmp_path, labels=OldLabels(dict.fromkeys(["a"], Target())),
                         transform=A.Compose([A.HorizontalFlip(p=1.0)]))


def _off_image(tmp_path: Path) -> Labels:
    _image(tmp_path, "a", (300, 400), [])
    boxes = np.array([[420, 30, 480, 150], [200, 320, 300, 380], [50, 50, 100, 100]], np.float32)  # right, below, in
    return Labels({"a": Target(boxes=boxes, box_labels=np.array([1, 2, 3]), image_label=1)})


@pytest.mark.parametrize("letterbox", [False, True], ids=["square", "letterbox"])
def test_a_box_without_area_is_dropped_with_its_label(tmp_path: Path, letterbox: bool) -> None:
    ds = DicomXrayDataset(tmp_path, labels=_off_image(tmp_path), config=pipeline_config(size=256, letterbox=letterbox))
    s = ds[0]  # a box wholly right of the image came out as [256.0, 6.4, 256.0, 32.0]
    assert s["labels"].tolist() == [3] and s["boxes"].shape == (1, 4)
    b = s["boxes"][0]
    assert bool((b[2] > b[0]) & (b[3] > b[1]))


def test_a_box_without_area_after_a_transform_is_dropped(tmp_path: Path) -> None:
    def shift(image: np.ndarray, bboxes: np.ndarray, labels: np.ndarray) -> dict:  # a transform that clips nothing
        return {"image": image, "bboxes": np.asarray(bboxes) + [200, 0, 200, 0], "labels": labels}

    s = DicomXrayDataset(tmp_path, labels=_off_image(tmp_path), size=256, transform=shift)[0]
    assert s["labels"].tolist() == [3]
    assert np.allclose(s["boxes"].numpy(), [[232.0, 128 * 50 / 150, 256.0, 128 * 100 / 150]], atol=1e-3)


def test_masks_come_from_the_labels_behind_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "films"
    labels = _mask_set(root, FILMS)
    ds = DicomXrayDataset(root, labels=labels, size=64, cache=tmp_path / "cache")
    first = ds[0]["mask"]
    labels.targets["a"] = Target(masks=ArrayMasks(np.zeros((1, 301, 419), np.uint8)))
    again = ds[0]
    assert ds.cache is not None and ds.cache.stats.hits == 1 and first.sum() > 0 and again["mask"].sum() == 0


def test_a_source_that_lists_its_files_is_not_walked(tmp_path: Path) -> None:
    labels = _mask_set(tmp_path, FILMS)
    (tmp_path / "c.dcm").write_bytes(b"not a DICOM: a walk would sniff it, the listing never names it")
    asked = []

    def files(root: Path) -> list[Path]:
        asked.append(Path(root))
        return [tmp_path / "b.dcm"]

    labels.files = files  # type: ignore[attr-defined]
    ds = DicomXrayDataset(tmp_path, labels=labels, size=32)
    assert asked == [tmp_path] and [Path(f).name for f in ds.files] == ["b.dcm"]
    labels.files = lambda root: None  # type: ignore[attr-defined]
    assert [Path(f).name for f in DicomXrayDataset(tmp_path, labels=labels, size=32).files] == ["a.dcm", "b.dcm"]


def test_preview_draws_the_mask_and_no_box_without_area(tmp_path: Path) -> None:
    from PIL import Image

    from dicomxray.cli.preview import preview_grid

    films = tmp_path / "films"
    ds = DicomXrayDataset(films, labels=_mask_set(films, {"a": ((200, 200), [(0, 0, 100, 200)])}), size=64)
    out = np.asarray(Image.open(preview_grid(ds, tmp_path / "p.png", count=1, cols=1, tile=64)).convert("RGB"))
    left, right = out[32:, 8:24].reshape(-1, 3).mean(0), out[32:, 40:56].reshape(-1, 3).mean(0)
    assert left[0] > left[1] + 40 and abs(right[0] - right[1]) < 5  # the lesion tinted red, the rest grey
    boxes = DicomXrayDataset(tmp_path, labels=_off_image(tmp_path), size=256)
    assert boxes[0]["labels"].tolist() == [3]  # what preview draws: the sample's boxes, none without area


@pytest.mark.parametrize("mode", MODES)
def test_column_major_masks_map_as_row_major_ones(mode: dict) -> None:
    from dicomxray.config import GeometryConfig
    from dicomxray.pixels.geometry import masks_to_output, plan_geometry

    rng = np.random.default_rng(0)
    planes = (rng.random((2, 301, 419)) > 0.7).astype(np.uint8)
    column_major = np.ascontiguousarray(planes.transpose(0, 2, 1)).transpose(0, 2, 1)  # as a run-length decode gives
    geom = plan_geometry(301, 419, GeometryConfig(size=100, mode="letterbox" if mode.get("letterbox") else
                                                  "keep_ratio" if mode.get("keep_ratio") else "square"))
    assert np.array_equal(masks_to_output(column_major, geom), masks_to_output(planes, geom))
