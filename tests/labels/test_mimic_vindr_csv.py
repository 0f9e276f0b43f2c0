"""Multi-label sources: MIMIC-CXR, VinDr-CXR (PhysioNet) and a hospital's own CSV, each in its published layout."""

from __future__ import annotations

import gzip
import math
import warnings

import numpy as np
import pytest

from dicomxray import LabelFormatError, SourceFileNotFoundError
from dicomxray.labels import VINDR_LOCAL_LABELS, BoxFusion, CsvLabels, MimicCxr, VinDrCxr
from dicomxray.labels._csv import read_csv

NAN = math.nan


def same(a, b):
    return np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32), equal_nan=True)


def gz(path, text):
    with gzip.open(path, "wt") as fh:
        fh.write(text)


# Findings deliberately not in the published order: they are read by name.
CHEXPERT = """subject_id,study_id,Pneumonia,No Finding,Atelectasis,Edema
10000032,50414267,1.0,,-1.0,0.0
10000032,53189527,,1.0,,-1.0
10000764,57375967,-1.0,,,
"""
METADATA = """dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns
aaa,10000032,50414267,CHEST (PA AND LAT),PA,3056,2544
bbb,10000032,50414267,CHEST (PA AND LAT),LATERAL,3056,2544
ccc,10000032,53189527,CHEST (PORTABLE AP),AP,2705,2539
ddd,10000764,57375967,CHEST (PA AND LAT),PA,3056,2544
eee,10000764,59999999,CHEST (PA AND LAT),PA,3056,2544
"""
SPLIT = """dicom_id,study_id,subject_id,split
aaa,50414267,10000032,train
bbb,50414267,10000032,train
ccc,53189527,10000032,train
ddd,57375967,10000764,validate
eee,59999999,10000764,train
"""


def mimic_folder(root, labels_dir=None, present=("aaa", "bbb", "ccc", "ddd", "eee")):
    where = labels_dir or root
    where.mkdir(parents=True, exist_ok=True)
    gz(where / "mimic-cxr-2.0.0-chexpert.csv.gz", CHEXPERT)
    gz(where / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA)
    (where / "mimic-cxr-2.0.0-split.csv").write_text(SPLIT)    # plain or gzipped, either is found
    for line in METADATA.splitlines()[1:]:
        dicom_id, subject, study = line.split(",")[:3]
        if dicom_id in present:
            path = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")                              # never opened: files() reads the metadata
    return root


def test_mimic_joins_studies_views_and_split(tmp_path):
    labels = MimicCxr(mimic_folder(tmp_path))
    assert labels.multilabel_classes == ("Pneumonia", "No Finding", "Atelectasis", "Edema")
    assert labels.keys() == {"aaa", "ccc"}          # bbb lateral, ddd validate, eee no labelled study
    t = labels.target("aaa")
    assert t.study_id == "50414267" and t.image_labels.dtype == np.float32
    assert same(t.image_labels, [1, NAN, NAN, 0])  # uncertain and blank are unknown by default
    assert same(labels.target("ccc").image_labels, [NAN, 1, NAN, NAN])
    every = MimicCxr(tmp_path, views=None, split=None)
    assert every.keys() == {"aaa", "bbb", "ccc", "ddd"}
    assert MimicCxr(tmp_path, split="validate").keys() == {"ddd"}


@pytest.mark.parametrize(("kwargs", "aaa", "ccc"), [
    pytest.param({"uncertain": "zeros"}, [1, NAN, 0, 0], [NAN, 1, NAN, 0], id="u-zeros"),
    pytest.param({"uncertain": "ones"}, [1, NAN, 1, 0], [NAN, 1, NAN, 1], id="u-ones"),
    pytest.param({"unmentioned": "zeros"}, [1, 0, NAN, 0], [0, 1, 0, NAN], id="blank-zeros"),
    pytest.param({"no_finding_rule": True}, [1, NAN, NAN, 0], [0, 1, 0, 0], id="torchxrayvision"),
    pytest.param({"no_finding_rule": True, "uncertain": "ones"}, [1, NAN, 1, 0], [0, 1, 0, 1], id="rule-after-policy"),
])
def test_mimic_policies(tmp_path, kwargs, aaa, ccc):
    labels = MimicCxr(mimic_folder(tmp_path), **kwargs)
    assert same(labels.target("aaa").image_labels, aaa)
    assert same(labels.target("ccc").image_labels, ccc)


def test_mimic_hands_the_dataset_its_files_without_sniffing_or_warnings(tmp_path):
    mimic_folder(tmp_path / "mimic", labels_dir=tmp_path / "jpg", present=("aaa", "bbb", "ddd"))
    labels = MimicCxr(tmp_path / "mimic", labels_dir=tmp_path / "jpg", split=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = labels.files(tmp_path / "mimic")
    # ccc is selected but not downloaded; bbb (lateral) and eee (unlabelled) are not selected
    assert files == [tmp_path / "mimic" / "files/p10/p10000032/s50414267/aaa.dcm",
                     tmp_path / "mimic" / "files/p10/p10000764/s57375967/ddd.dcm"]
    assert labels.files(tmp_path / "mimic" / "files" / "p10" / "p10000764") == files[1:]
    assert labels.files(tmp_path / "elsewhere") is None
    with pytest.raises(SourceFileNotFoundError, match="mimic-cxr-2.0.0-chexpert"):
        MimicCxr(tmp_path / "mimic")                       # the CSVs are not beside files/


def test_mimic_refuses_values_it_does_not_know(tmp_path):
    mimic_folder(tmp_path)
    gz(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz", CHEXPERT.replace("1.0,,-1.0,0.0", "1.0,,2.0,0.0"))
    with pytest.raises(LabelFormatError, match=r"chexpert.csv.gz:2: column 'Atelectasis'.*'2.0'"):
        MimicCxr(tmp_path)
    with pytest.raises(ValueError, match="uncertain"):
        MimicCxr(tmp_path, uncertain="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split"):
        MimicCxr(tmp_path, split="val")  # type: ignore[arg-type]


LABEL_COLUMNS = [*VINDR_LOCAL_LABELS, "COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding"]


def vindr_folder(root):
    notes = root / "annotations"
    notes.mkdir(parents=True)

    def row(image, reader, *marked):
        return ",".join([image, reader, *("1" if c in marked else "0" for c in LABEL_COLUMNS)])

    (notes / "image_labels_train.csv").write_text("\n".join([
        ",".join(["image_id", "rad_id", *LABEL_COLUMNS]),
        row("i1", "R1", "Cardiomegaly", "Pneumonia"), row("i1", "R2", "Cardiomegaly"), row("i1", "R3", "Edema"),
        row("i2", "R1", "No finding"), row("i2", "R2", "No finding"), row("i2", "R3", "No finding"),
    ]) + "\n")
    (notes / "annotations_train.csv").write_text(
        "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
        "i1,R1,Cardiomegaly,100,100,200,200\n"
        "i1,R2,Cardiomegaly,104,98,206,204\n"
        "i1,R3,Edema,300,300,340,330\n"
        "i2,R1,No finding,,,,\n")
    (notes / "image_labels_test.csv").write_text("\n".join([
        ",".join(["image_id", *LABEL_COLUMNS]), ",".join(["t1", *("1" if c == "Rib fracture" else "0" for c in LABEL_COLUMNS)]),
    ]) + "\n")
    (notes / "annotations_test.csv").write_text(
        "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\nt1,R11,Rib fracture,5,6,50,60\n")
    return root


def test_vindr_votes_and_boxes(tmp_path):
    root = vindr_folder(tmp_path)
    names = tuple(LABEL_COLUMNS)
    anyone = VinDrCxr(root)
    assert anyone.multilabel_classes == names and len(names) == 28
    t = anyone.target("i1")
    marked = {names[i] for i in np.flatnonzero(t.image_labels)}
    assert marked == {"Cardiomegaly", "Pneumonia", "Edema"}
    assert {names[i] for i in np.flatnonzero(VinDrCxr(root, vote="majority").target("i1").image_labels)} == {"Cardiomegaly"}
    assert not VinDrCxr(root, vote="all").target("i1").image_labels.any()
    assert t.box_labels.tolist() == [VINDR_LOCAL_LABELS.index("Cardiomegaly") + 1] * 2 + [VINDR_LOCAL_LABELS.index("Edema") + 1]
    assert anyone.box_classes[t.box_labels[2]] == "Edema"
    assert t.image_label == 1 and anyone.target("i2").image_label == 0 and len(anyone.target("i2").boxes) == 0
    fused = VinDrCxr(root, fusion=BoxFusion(iou_threshold=0.4, min_votes=2)).target("i1")
    assert fused.box_labels.tolist() == [VINDR_LOCAL_LABELS.index("Cardiomegaly") + 1]   # Edema: one reader
    test = VinDrCxr(root, split="test")
    assert test.keys() == {"t1"} and test.target("t1").box_labels.tolist() == [VINDR_LOCAL_LABELS.index("Rib fracture") + 1]


def test_vindr_refuses_what_is_not_its_format(tmp_path):
    root = vindr_folder(tmp_path)
    boxes = root / "annotations" / "annotations_train.csv"
    boxes.write_text(boxes.read_text() + "i1,R1,Elbow,1,2,3,4\n")
    with pytest.raises(LabelFormatError, match=r"annotations_train.csv:6: column 'class_name'.*'Elbow'"):
        VinDrCxr(root)
    test = root / "annotations" / "image_labels_test.csv"
    test.write_text(test.read_text() + test.read_text().splitlines()[1] + "\n")
    with pytest.raises(LabelFormatError, match="second row for test image"):
        VinDrCxr(root, split="test")


def test_csv_labels_key_by_stem(tmp_path):
    path = tmp_path / "findings.csv"
    path.write_text("file,patient,effusion,nodule,edema\n"
                    "scans/2024/a.dcm,P1,1,0,\n"
                    "b.dicom,P1,-1,1,0\n"
                    "c,P2,,,1\n"
                    "old\\d.dcm,P3,0,0,0\n")
    labels = CsvLabels(path, key="file", study="patient")
    assert labels.multilabel_classes == ("effusion", "nodule", "edema")
    assert labels.keys() == {"a", "b", "c", "d"}
    assert same(labels.target("a").image_labels, [1, 0, NAN]) and labels.target("a").study_id == "P1"
    assert same(labels.target("b").image_labels, [NAN, 1, 0])
    some = CsvLabels(path, key="file", classes=["edema", "effusion"], uncertain="ones", unmentioned="zeros")
    assert some.multilabel_classes == ("edema", "effusion")
    assert same(some.target("b").image_labels, [0, 1]) and same(some.target("c").image_labels, [1, 0])
    assert some.target("c").study_id == "c"


def test_csv_labels_refuse_two_rows_for_one_image_and_unknown_values(tmp_path):
    path = tmp_path / "findings.csv"
    path.write_text("file,effusion\nx/a.dcm,1\ny/a.dcm,0\n")
    with pytest.raises(LabelFormatError, match=r"findings.csv:3: column 'file'.*first on line 2"):
        CsvLabels(path, key="file")
    path.write_text("file,effusion\na,yes\n")
    with pytest.raises(LabelFormatError, match=r"findings.csv:2: column 'effusion'.*'yes'"):
        CsvLabels(path, key="file")
    with pytest.raises(LabelFormatError, match="missing column"):
        CsvLabels(path, key="name")


def test_the_csv_reader_names_file_row_and_column(tmp_path):
    path = tmp_path / "x.csv.gz"
    gz(path, " a , b\n1,2\n\n3,oops\n")
    rows = read_csv(path, required=("a", "b"))
    first = next(rows)
    assert (first.line, first.integer("a"), first.number("b")) == (2, 1, 2.0)
    bad = next(rows)
    with pytest.raises(LabelFormatError, match=r"x.csv.gz:4: column 'b': expected a number, got 'oops'"):
        bad.number("b")
    with pytest.raises(LabelFormatError, match=r"x.csv.gz:4: column 'c': no such column"):
        bad["c"]
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(LabelFormatError, match="bin.csv"):
        list(read_csv(tmp_path / "bin.csv"))
