"""Targets competitors train on: VinBigData multi-hot and vote rules, RSNA's detailed classes, multi-label folds."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from dicomxray.errors import LabelFormatError, LabelWarning
from dicomxray.labels import BoxFusion, RsnaPneumonia, VinBigData, patient_folds, vinbig_prediction_string

HEADER = ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"]
A, B = [100, 100, 200, 200], [104, 98, 206, 204]


def write_vinbig(folder, rows, rad_id=True):
    with open(folder / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER if rad_id else [h for h in HEADER if h != "rad_id"])
        w.writerows(rows if rad_id else [r[:3] + r[4:] for r in rows])


ROWS = [
    ["i1", "Cardiomegaly", 3, "R8", *A], ["i1", "Cardiomegaly", 3, "R9", *B],  # two radiologists agree
    ["i1", "Nodule/Mass", 8, "R8", *A],                                         # one radiologist alone
    ["i2", "Nodule/Mass", 8, "R8", *A], ["i2", "No finding", 14, "R9", "", "", "", ""],
    ["i3", "No finding", 14, "R9", "", "", "", ""],
]


def test_multi_hot_vote_rules(tmp_path):
    write_vinbig(tmp_path, ROWS)
    any_vote = VinBigData(tmp_path)
    assert any_vote.target("i1").image_labels.shape == (14,)
    assert np.flatnonzero(any_vote.target("i1").image_labels).tolist() == [3, 8]
    assert np.flatnonzero(VinBigData(tmp_path, multi_hot="majority").target("i1").image_labels).tolist() == [3]
    fused = VinBigData(tmp_path, fusion=BoxFusion(iou_threshold=0.4, min_votes=2), multi_hot="fused")
    assert np.flatnonzero(fused.target("i1").image_labels).tolist() == [3]
    assert not any_vote.target("i3").image_labels.any()
    with pytest.raises(ValueError, match="multi_hot"):
        VinBigData(tmp_path, multi_hot="fused")


def test_image_label_follows_the_boxes_fusion_leaves(tmp_path):
    # i2: one radiologist's nodule; with min_votes=2 no box is left, so the image is "No finding"
    # (before: image_label 1 with no box and missing_annotation False)
    write_vinbig(tmp_path, ROWS)
    labels = VinBigData(tmp_path, fusion=BoxFusion(iou_threshold=0.4, min_votes=2))
    for key in labels.keys():
        t = labels.target(key)
        assert t.image_label == int(len(t.boxes) > 0) and t.study_positive == (len(t.boxes) > 0)
    assert labels.target("i2").image_label == 0 and labels.target("i1").image_label == 1


def test_min_votes_without_rad_id_warns_and_counts_boxes(tmp_path):
    # before: 0 boxes kept, silently
    write_vinbig(tmp_path, ROWS, rad_id=False)
    with pytest.warns(LabelWarning, match="rad_id"):
        labels = VinBigData(tmp_path, fusion=BoxFusion(iou_threshold=0.4, min_votes=2))
    assert labels.target("i1").box_labels.tolist() == [4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VinBigData(tmp_path, fusion=BoxFusion(iou_threshold=0.4))


def test_vinbig_class_convention_is_explicit():
    box = [[10, 20, 40, 60]]
    assert vinbig_prediction_string(box, [0.5], class_ids=[0]) == "0 0.5 10.0 20.0 40.0 60.0"
    assert vinbig_prediction_string(box, [0.5], box_labels=[1]) == "0 0.5 10.0 20.0 40.0 60.0"
    with pytest.raises(TypeError):
        vinbig_prediction_string(box, [0.5], [1])  # type: ignore[misc]  # a positional label: which convention?
    with pytest.raises(ValueError, match="exactly one"):
        vinbig_prediction_string(box, [0.5])
    with pytest.raises(ValueError, match="class_ids"):
        vinbig_prediction_string(box, [0.5], class_ids=[14])


def write_rsna(folder, detailed):
    with open(folder / "stage_2_train_labels.csv", "w", newline="") as fh:
        fh.write("patientId,x,y,width,height,Target\np1,,,,,0\np2,,,,,0\np3,10,20,30,40,1\np3,50,60,10,10,1\n")
    with open(folder / "stage_2_detailed_class_info.csv", "w", newline="") as fh:
        fh.write("patientId,class\n" + "".join(f"{p},{c}\n" for p, c in detailed))


def test_rsna_detailed_classes(tmp_path):
    write_rsna(tmp_path, [("p1", "Normal"), ("p2", "No Lung Opacity / Not Normal"), ("p3", "Lung Opacity"),
                          ("p3", "Lung Opacity")])
    labels = RsnaPneumonia(tmp_path, detailed=True)
    assert labels.classes == ("Normal", "No Lung Opacity / Not Normal", "Lung Opacity")
    assert [labels.target(p).image_label for p in ("p1", "p2", "p3")] == [0, 1, 2]
    assert labels.target("p2").study_positive is False and len(labels.target("p3").boxes) == 2
    assert RsnaPneumonia(tmp_path).target("p2").image_label == 0


def test_rsna_detailed_classes_must_agree_with_target(tmp_path):
    write_rsna(tmp_path, [("p1", "Lung Opacity"), ("p2", "Normal"), ("p3", "Lung Opacity")])
    with pytest.raises(LabelFormatError, match="p1"):
        RsnaPneumonia(tmp_path, detailed=True)


def test_patient_folds_stratify_multi_label_targets():
    # before: patient_folds rejected an N x C target
    rng = np.random.default_rng(0)
    n = 600
    groups = [f"p{i // 2}" for i in range(n)]
    hot = (rng.random((n, 5)) < [0.3, 0.1, 0.05, 0.5, 0.02]).astype(np.float32)
    folds = patient_folds(groups, hot, k=5)
    for g in set(groups):
        assert len({folds[i] for i in range(n) if groups[i] == g}) == 1
    share = np.stack([hot[folds == f].sum(0) for f in range(5)]) / hot.sum(0)
    assert np.all(np.abs(share - 0.2) < 0.06), share


def test_patient_folds_take_nan_as_unknown_not_negative():
    # before: NaN counted as 0 (`arr > 0`), so a column's known negatives were left to chance: 11 to 19 per fold
    rng = np.random.default_rng(1)
    n, k = 300, 5
    y = np.full((n, 2), np.nan, np.float32)
    y[:, 1] = rng.random(n) < 0.3
    known = rng.permutation(n)[:100]
    y[known[:20], 0] = 1.0
    y[known[20:], 0] = 0.0                                  # 80 known negatives of finding 0, 200 unknown
    folds = patient_folds([f"p{i}" for i in range(n)], y, k=k)
    negatives = np.bincount(folds[y[:, 0] == 0], minlength=k)
    positives = np.bincount(folds[y[:, 0] == 1], minlength=k)
    assert negatives.min() >= 15 and negatives.max() <= 17, negatives
    assert positives.tolist() == [4] * k
    assert np.ptp(np.bincount(folds, minlength=k)) <= 2
