"""Fusing VinBigData's radiologists' near-duplicate boxes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from dicomxray.labels import BoxFusion, VinBigData

# Three radiologists draw one finding (class label 4) nearly alike; R1 also draws a lone nodule (label 9).
THREE = [[100, 100, 200, 200], [104, 98, 206, 204], [96, 102, 198, 196]]
LONE = [500, 500, 540, 530]


def test_wbf_fuses_three_overlapping_boxes_into_their_mean():
    boxes, labels, votes = BoxFusion(method="wbf", iou_threshold=0.5).fuse(
        [*THREE, LONE], [4, 4, 4, 9], readers=["R1", "R2", "R3", "R1"])
    order = np.argsort(labels)  # ensemble_boxes' order: by score, ties reversed
    assert labels[order].tolist() == [4, 9] and votes[order].tolist() == [3, 1]
    assert np.allclose(boxes[order[0]], np.mean(THREE, axis=0)) and np.allclose(boxes[order[1]], LONE)


def test_min_votes_keeps_what_readers_agree_on():
    fusion = BoxFusion(iou_threshold=0.5, min_votes=2)
    boxes, labels, votes = fusion.fuse([*THREE, LONE], [4, 4, 4, 9], readers=["R1", "R2", "R3", "R1"])
    assert labels.tolist() == [4] and votes.tolist() == [3]
    # two boxes from the same reader are one vote
    boxes, labels, _ = fusion.fuse(THREE[:2], [4, 4], readers=["R1", "R1"])
    assert len(boxes) == 0 and labels.shape == (0,)


def test_nms_keeps_the_best_box_and_classes_never_mix():
    boxes, labels, votes = BoxFusion(method="nms", iou_threshold=0.5).fuse(THREE, [4, 4, 4], scores=[0.2, 0.9, 0.5])
    assert boxes.tolist() == [THREE[1]] and votes.tolist() == [3]
    boxes, labels, _ = BoxFusion().fuse([THREE[0], THREE[0]], [4, 5])
    assert sorted(labels.tolist()) == [4, 5]  # same place, different finding: both kept
    boxes, _, _ = BoxFusion(iou_threshold=0.95).fuse(THREE, [4, 4, 4])
    assert len(boxes) == 3  # nothing overlaps that much


def test_fusion_as_target_transform_keeps_tensors():
    target = {"boxes": torch.tensor(THREE, dtype=torch.float32), "labels": torch.tensor([4, 4, 4]),
              "image_label": torch.tensor(1)}
    out = BoxFusion(min_votes=3)(target)
    assert out["boxes"].dtype == torch.float32 and out["labels"].dtype == torch.int64
    assert out["boxes"].shape == (1, 4) and out["labels"].tolist() == [4] and out["image_label"].item() == 1


def test_vinbig_adapter_fuses_per_image(tmp_path):
    rows = [["i1", "Cardiomegaly", 3, f"R{r + 8}", *box] for r, box in enumerate(THREE)]
    rows += [["i1", "Nodule/Mass", 8, "R8", *LONE], ["i2", "No finding", 14, "R9", "", "", "", ""]]
    with open(tmp_path / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"])
        w.writerows(rows)
    assert len(VinBigData(tmp_path).target("i1").boxes) == 4  # default: every radiologist's box
    fused = VinBigData(tmp_path, fusion=BoxFusion(iou_threshold=0.4, min_votes=2))
    t = fused.target("i1")
    assert t.box_labels.tolist() == [4] and np.allclose(t.boxes, [np.mean(THREE, axis=0)])
    assert t.image_label == 1 and t.study_positive is True
    assert fused.target("i2").image_label == 0 and fused.target("i2").study_positive is False


@pytest.mark.parametrize("kwargs", [
    pytest.param({"method": "soft"}, id="method"),
    pytest.param({"iou_threshold": 1.0}, id="iou"),
    pytest.param({"min_votes": 0}, id="votes"),
])
def test_bad_fusion_options_raise(kwargs):
    with pytest.raises(ValueError):
        BoxFusion(**kwargs)
