from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from dicomxray import DicomXrayError, SourceFileNotFoundError
from dicomxray.labels import (
    RsnaPneumonia,
    SiimCovid,
    VinBigData,
    labelled_only,
    patient_folds,
    prediction_strings,
    write_submission,
)
from dicomxray.labels.siim import study_prediction_string
from dicomxray.testing import make_siim_dataset


def _write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_siim_parses_the_competition_format(tmp_path):
    _write(tmp_path / "train_study_level.csv",
           ["id", "Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance"],
           [["5776db0cec75_study", 0, 1, 0, 0], ["ff0879eb20ed_study", 1, 0, 0, 0]])
    _write(tmp_path / "train_image_level.csv", ["id", "boxes", "label", "StudyInstanceUID"], [
        ["000a312787f2_image", "[{'x': 789.28836, 'y': 582.43035, 'width': 1026.65662, 'height': 1917.30292}, "
         "{'x': 2245.91208, 'y': 591.20528, 'width': 1094.66162, 'height': 1761.54944}]",
         "opacity 1 789.28836 582.43035 1815.94498 2499.73327 opacity 1 2245.91208 591.20528 3340.5737 2352.75472",
         "5776db0cec75"],
        ["000c3a3f293f_image", "", "none 1 0 0 1 1", "ff0879eb20ed"],
    ])
    labels = SiimCovid(tmp_path)
    t = labels.target("000a312787f2")
    assert t.image_label == 1 and t.box_labels.tolist() == [1, 1]
    assert np.allclose(t.boxes[0], [789.28836, 582.43035, 1815.94498, 2499.73327])
    assert labels.target("000c3a3f293f").boxes.shape == (0, 4) and labels.target("000c3a3f293f").image_label == 0


def test_siim_bad_boxes_name_the_line(tmp_path):
    _write(tmp_path / "train_study_level.csv",
           ["id", "Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance"],
           [["a_study", 0, 1, 0, 0]])
    _write(tmp_path / "train_image_level.csv", ["id", "boxes", "label", "StudyInstanceUID"],
           [["b_image", "[{'x': oops}]", "", "a"]])
    with pytest.raises(DicomXrayError, match=r"train_image_level.csv:2"):
        SiimCovid(tmp_path)


def test_missing_label_file(tmp_path):
    with pytest.raises(SourceFileNotFoundError, match="train_study_level.csv"):
        SiimCovid(tmp_path)


def test_rsna_one_row_per_box(tmp_path):
    _write(tmp_path / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"],
           [["p1", "", "", "", "", 0], ["p2", 10, 20, 30, 40, 1], ["p2", 100, 100, 10, 10, 1]])
    labels = RsnaPneumonia(tmp_path)
    assert labels.target("p1").boxes.shape == (0, 4) and labels.target("p1").image_label == 0
    assert np.allclose(labels.target("p2").boxes, [[10, 20, 40, 60], [100, 100, 110, 110]])


def test_vinbig_no_finding_and_classes(tmp_path):
    _write(tmp_path / "train.csv", ["image_id", "class_name", "class_id", "rad_id", "x_min", "y_min", "x_max", "y_max"],
           [["i1", "No finding", 14, "R1", "", "", "", ""], ["i2", "Cardiomegaly", 3, "R2", 1, 2, 3, 4]])
    labels = VinBigData(tmp_path)
    assert labels.target("i1").image_label == 0 and labels.target("i1").boxes.shape == (0, 4)
    assert labels.target("i2").box_labels.tolist() == [4] and labels.box_classes[4] == "Cardiomegaly"


def test_patient_folds_keep_patients_together_and_stratify():
    rng = np.random.default_rng(0)
    groups = [f"P{rng.integers(0, 40)}" for _ in range(200)]
    labels = [int(rng.integers(0, 4)) for _ in range(200)]
    folds = patient_folds(groups, labels, k=5)
    for g in set(groups):
        assert len({folds[i] for i, x in enumerate(groups) if x == g}) == 1
    sizes = np.bincount(folds, minlength=5)
    assert sizes.min() > 20


def test_submission_strings(tmp_path):
    s = prediction_strings([[1, 2, 3, 4]], [0.9])
    assert s == "opacity 0.9 1.0 2.0 3.0 4.0"
    assert prediction_strings([], []) == "none 1 0 0 1 1"
    assert study_prediction_string([0.1, 0.2, 0.3, 0.4]).startswith("negative 0.1 0 0 1 1 typical 0.2")
    out = write_submission([("x_image", s)], tmp_path / "sub.csv")
    assert out.read_text().splitlines() == ["id,PredictionString", f"x_image,{s}"]


def test_synthetic_siim_folder_is_consistent(tmp_path):
    summary = make_siim_dataset(tmp_path, studies=4, size=(128, 160))
    labels = SiimCovid(tmp_path)
    stems = {p.stem for p in (tmp_path / "train").rglob("*.dcm")}
    assert stems == labels.keys() and summary.images == 4
    for p in (tmp_path / "train").rglob("*.dcm"):
        study, series = p.parent.parent.name, p.parent.name
        assert labels.target(p.stem).study_id == study and len(series) == 12


def _siim_with_multi_image_study(folder):
    """Study A (typical) has two images, only one with boxes; B is negative; C (atypical) has one unboxed image."""
    _write(folder / "train_study_level.csv",
           ["id", "Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance"],
           [["A_study", 0, 1, 0, 0], ["B_study", 1, 0, 0, 0], ["C_study", 0, 0, 0, 1]])
    _write(folder / "train_image_level.csv", ["id", "boxes", "label", "StudyInstanceUID"], [
        ["a1_image", "[{'x': 1, 'y': 2, 'width': 3, 'height': 4}]", "opacity 1 1 2 4 6", "A"],
        ["a2_image", "", "none 1 0 0 1 1", "A"],
        ["b1_image", "", "none 1 0 0 1 1", "B"],
        ["c1_image", "", "none 1 0 0 1 1", "C"],
    ])
    return folder


def test_siim_none_in_positive_study_is_flagged(tmp_path):
    labels = SiimCovid(_siim_with_multi_image_study(tmp_path))
    assert labels.keys() == {"a1", "a2", "b1", "c1"}
    flags = {k: (labels.target(k).study_positive, labels.target(k).missing_annotation) for k in sorted(labels.keys())}
    assert flags == {"a1": (True, False), "a2": (True, True), "b1": (False, False), "c1": (True, True)}


def test_siim_none_in_positive_study_can_be_dropped(tmp_path):
    labels = SiimCovid(_siim_with_multi_image_study(tmp_path), none_in_positive="drop")
    assert labels.keys() == {"a1", "b1"} and labels.target("a2") is None
    assert labels.target("b1").boxes.shape == (0, 4)  # a true negative stays
    with pytest.raises(ValueError, match="none_in_positive"):
        SiimCovid(tmp_path, none_in_positive="keep")


def test_patient_folds_warn_when_folds_stay_empty():
    with pytest.warns(UserWarning, match=r"only 3 patients for k=5 folds"):
        folds = patient_folds(["a", "b", "c", "c"], [0, 1, 0, 0], k=5)
    assert len(set(folds.tolist())) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        patient_folds(["a", "b", "c"], [0, 1, 0], k=3)


def test_labelled_only_says_how_many_are_left_out(tmp_path):
    _write(tmp_path / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"],
           [["p1", "", "", "", "", 0], ["p2", 1, 2, 3, 4, 1]])
    labels = RsnaPneumonia(tmp_path)
    paths = [tmp_path / f"{k}.dcm" for k in ("p1", "p2", "p3", "p4")]
    with pytest.warns(UserWarning, match=r"2 of 4 DICOM files have no label in RsnaPneumonia.*p3.dcm"):
        assert labelled_only(paths, labels) == paths[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labelled_only(paths[:2], labels) == paths[:2]


def test_study_positive_per_competition(tmp_path):
    _write(tmp_path / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"],
           [["p1", "", "", "", "", 0], ["p2", 1, 2, 3, 4, 1]])
    rsna = RsnaPneumonia(tmp_path)
    assert (rsna.target("p1").study_positive, rsna.target("p2").study_positive) == (False, True)
    assert rsna.classes == ("no_opacity", "lung_opacity") and VinBigData.classes == ("no_finding", "abnormal")
