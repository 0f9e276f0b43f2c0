"""Submission writers of the three competitions (format, round trip, checks) and the batch mapping."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from dicomxray import DicomXrayDataset, Geometry, pipeline_config
from dicomxray.labels import (
    boxes_to_original_batch,
    parse_prediction_string,
    prediction_strings,
    read_submission,
    rsna_prediction_string,
    study_prediction_string,
    unbatch_meta,
    vinbig_prediction_string,
    write_submission,
)
from dicomxray.testing import chest_phantom, write_dicom

BOXES = np.array([[10.0, 20.0, 40.0, 60.0], [100.5, 7.25, 180.0, 99.0]])
SCORES = [0.9, 0.25]


def test_siim_round_trip_and_format(tmp_path):
    rows = [
        ("aaa_image", prediction_strings(BOXES, SCORES)),
        ("bbb_image", prediction_strings([], [])),
        ("ccc_study", study_prediction_string([0.1, 0.6, 0.2, 0.1])),
    ]
    path = write_submission(rows, tmp_path / "sub.csv", competition="siim")
    lines = path.read_text().splitlines()
    assert lines[0] == "id,PredictionString"
    assert lines[1] == "aaa_image,opacity 0.9 10.0 20.0 40.0 60.0 opacity 0.25 100.5 7.2 180.0 99.0"
    assert lines[2] == "bbb_image,none 1 0 0 1 1"
    assert lines[3] == "ccc_study,negative 0.1 0 0 1 1 typical 0.6 0 0 1 1 indeterminate 0.2 0 0 1 1 atypical 0.1 0 0 1 1"
    back = read_submission(path, "siim")
    assert np.allclose(back["aaa_image"].boxes, BOXES, atol=0.051) and np.allclose(back["aaa_image"].scores, SCORES)
    assert back["aaa_image"].classes == ("opacity", "opacity")
    assert back["bbb_image"].classes == ("none",) and back["bbb_image"].boxes.tolist() == [[0, 0, 1, 1]]
    assert back["ccc_study"].classes == ("negative", "typical", "indeterminate", "atypical")


def test_rsna_round_trip_and_format(tmp_path):
    s = rsna_prediction_string(BOXES, SCORES)
    assert s == "0.9 10.0 20.0 30.0 40.0 0.25 100.5 7.2 79.5 91.8"  # conf x y width height
    path = write_submission([("p-1", s), ("p-2", rsna_prediction_string([], []))], tmp_path / "s.csv", competition="rsna")
    assert path.read_text().splitlines() == ["patientId,PredictionString", f"p-1,{s}", "p-2,"]
    back = read_submission(path, "rsna")
    assert np.allclose(back["p-1"].boxes, BOXES, atol=0.11) and np.allclose(back["p-1"].scores, SCORES)
    assert back["p-2"].boxes.shape == (0, 4) and back["p-2"].scores.shape == (0,)


def test_vinbig_round_trip_and_format(tmp_path):
    s = vinbig_prediction_string(BOXES, SCORES, box_labels=[4, 1])  # dataset labels: class_id + 1
    assert s == "3 0.9 10.0 20.0 40.0 60.0 0 0.25 100.5 7.2 180.0 99.0"
    rows = [("abc", s), ("def", vinbig_prediction_string([], [], class_ids=[])),
            ("ghi", vinbig_prediction_string(BOXES[:1], [0.5], box_labels=[14], no_finding_score=0.3))]
    path = write_submission(rows, tmp_path / "s.csv", competition="vinbig")
    lines = path.read_text().splitlines()
    assert lines[0] == "image_id,PredictionString" and lines[2] == "def,14 1 0 0 1 1"
    assert lines[3] == "ghi,13 0.5 10.0 20.0 40.0 60.0 14 0.3 0 0 1 1"
    back = read_submission(path, "vinbig")
    assert back["abc"].classes == ("3", "0") and np.allclose(back["abc"].boxes, BOXES, atol=0.051)
    assert back["def"].classes == ("14",)


@pytest.mark.parametrize(("competition", "row", "match"), [
    pytest.param("siim", ("000a312787f2", "none 1 0 0 1 1"), "_image", id="siim-id-without-suffix"),
    pytest.param("siim", ("x_image", "typical 1 0 0 1 1"), "unknown siim class", id="siim-study-class-on-image"),
    pytest.param("siim", ("x_image", ""), "none 1 0 0 1 1", id="siim-empty"),
    pytest.param("siim", ("x_image", "opacity 0.5 1 2 3"), "groups of 6", id="siim-short-group"),
    pytest.param("rsna", ("p_image", ""), "suffix", id="rsna-siim-suffix"),
    pytest.param("rsna", ("p", "0.9 1 2 3 4 5"), "groups of 5", id="rsna-six-tokens"),
    pytest.param("rsna", ("p", "0.9 1 2 -3 4"), "negative size", id="rsna-negative-width"),
    pytest.param("vinbig", ("i", ""), "14 1 0 0 1 1", id="vinbig-empty"),
    pytest.param("vinbig", ("i", "15 0.5 0 0 1 1"), "unknown vinbig class", id="vinbig-class-15"),
    pytest.param("vinbig", ("i", "3 high 0 0 1 1"), "not a number", id="vinbig-not-a-number"),
])
def test_bad_rows_raise_before_writing(tmp_path, competition, row, match):
    with pytest.raises(ValueError, match=match):
        write_submission([row], tmp_path / "sub.csv", competition=competition)
    assert not (tmp_path / "sub.csv").exists()


def test_duplicate_ids_and_unknown_competition(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        write_submission([("a_image", "none 1 0 0 1 1")] * 2, tmp_path / "s.csv")
    with pytest.raises(ValueError, match="competition"):
        write_submission([], tmp_path / "s.csv", competition="kaggle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="box_labels"):
        vinbig_prediction_string(BOXES[:1], [0.5], box_labels=[0])  # 0 is background, not a class


def test_read_submission_checks_the_header(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,PredictionString\nabc,14 1 0 0 1 1\n")
    with pytest.raises(ValueError, match="image_id,PredictionString"):
        read_submission(path, "vinbig")
    assert parse_prediction_string("14 1 0 0 1 1", "vinbig").boxes.tolist() == [[0, 0, 1, 1]]


@pytest.fixture
def unlabelled(tmp_path):
    """Three unlabelled files of different shapes, so letterboxing pads differently."""
    sizes = [(60, 90), (90, 50), (64, 64)]
    for i, (h, w) in enumerate(sizes):
        write_dicom(tmp_path / "test" / f"img{i}.dcm", chest_phantom(h, w, seed=i))
    return DicomXrayDataset(tmp_path / "test", config=pipeline_config(size=32, letterbox=True)), sizes


@pytest.mark.parametrize("collate", ["default", "dataset"])
def test_boxes_to_original_batch_whatever_the_collate(unlabelled, collate):
    ds, sizes = unlabelled
    kw = {"collate_fn": ds.collate} if collate == "dataset" else {}
    batch = next(iter(DataLoader(ds, batch_size=3, **kw)))
    geoms = [Geometry.from_record(m["geometry"]) for m in unbatch_meta(batch["meta"])]
    assert geoms == [Geometry.from_record(ds[i]["meta"]["geometry"]) for i in range(3)]  # exact, not rounded
    content = [np.array([[g.pad_left, g.pad_top, g.pad_left + g.content_width, g.pad_top + g.content_height]])
               for g in geoms]
    assert {g.pad_left for g in geoms} != {0} and {g.pad_top for g in geoms} != {0}
    back = boxes_to_original_batch(content, batch["meta"])
    for b, (h, w) in zip(back, sizes, strict=True):
        assert np.allclose(b, [[0, 0, w, h]])
    with pytest.raises(ValueError, match="2 box arrays for a batch of 3"):
        boxes_to_original_batch(content[:2], batch["meta"])


def _missing_values():
    pd = pytest.importorskip("pandas")
    return [None, float("nan"), np.float32("nan"), np.float64("nan"), pd.NA, pd.NaT]


def test_every_missing_value_is_an_empty_prediction_never_a_token(tmp_path):
    # before: pd.NA, NaT and float32 NaN became the tokens '<NA>', 'NaT', 'nan' ("groups of 5 tokens, got 1")
    out = tmp_path / "s.csv"
    for value in _missing_values():
        write_submission([("p1", value), ("p2", rsna_prediction_string(BOXES[:1], [0.5]))], out, competition="rsna")
        assert read_submission(out, "rsna")["p1"].boxes.shape == (0, 4), repr(value)
        for competition, row_id in (("siim", "a_image"), ("vinbig", "a")):
            with pytest.raises(ValueError, match="empty or missing"):
                write_submission([(row_id, value)], tmp_path / "refused.csv", competition=competition)
            assert not (tmp_path / "refused.csv").exists()
        with pytest.raises(ValueError, match="has no patientId"):
            write_submission([(value, "")], tmp_path / "refused.csv", competition="rsna")


def test_a_frame_read_with_string_dtype_is_written(tmp_path):
    import io

    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(io.StringIO("patientId,PredictionString\na,\nb,0.5 1 2 3 4\n"), dtype="string")
    assert frame["PredictionString"].isna().iloc[0]
    out = write_submission(frame, tmp_path / "s.csv", competition="rsna", expected_ids=["a", "b"])
    assert out.read_text().splitlines() == ["patientId,PredictionString", "a,", "b,0.5 1 2 3 4"]
