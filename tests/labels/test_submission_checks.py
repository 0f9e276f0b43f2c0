"""Submissions that cannot be wrong: expected ids, every value, DataFrames, min_confidence and top_k."""

from __future__ import annotations

import numpy as np
import pytest

from dicomxray.labels import read_submission, read_submission_frame, write_submission


@pytest.mark.parametrize(("competition", "row", "match"), [
    pytest.param("siim", ("x_image", "opacity 0.5 -3 10 50 50"), "negative coordinate", id="negative-x"),
    pytest.param("siim", ("x_image", "opacity 1.5 3 10 50 50"), r"\[0, 1\]", id="confidence-above-1"),
    pytest.param("rsna", ("p", "-0.1 3 10 50 50"), r"\[0, 1\]", id="confidence-below-0"),
    pytest.param("siim", ("x_image", "opacity 0.5 10 10 10 50"), "zero or negative size", id="zero-width"),
    pytest.param("rsna", ("p", "0.5 10 10 40 0"), "zero or negative size", id="rsna-zero-height"),
    pytest.param("siim", ("x_study", "negative 1 10 10 50 50"), "0 0 1 1", id="siim-study-with-a-box"),
    pytest.param("siim", ("x_image", "none 1 10 10 50 50"), "0 0 1 1", id="siim-none-with-a-box"),
    pytest.param("vinbig", ("i", "14 0.5 10 10 50 50"), "0 0 1 1", id="vinbig-no-finding-with-a-box"),
    pytest.param("vinbig", ("i", "3 nan 10 10 50 50"), "non-finite", id="nan-confidence"),
])
def test_bad_values_raise_and_write_nothing(tmp_path, competition, row, match):
    # before: each of these was written without a word
    with pytest.raises(ValueError, match=match):
        write_submission([row], tmp_path / "s.csv", competition=competition)
    assert not (tmp_path / "s.csv").exists()


def test_expected_ids_name_what_is_missing_extra_or_twice(tmp_path):
    rows = [("a", ""), ("b", "0.9 1 2 3 4")]
    with pytest.raises(ValueError, match=r"1 missing \['c'\], 0 extra"):
        write_submission(rows, tmp_path / "s.csv", competition="rsna", expected_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"0 missing \[\], 1 extra \['b'\]"):
        write_submission(rows, tmp_path / "s.csv", competition="rsna", expected_ids=["a"])
    with pytest.raises(ValueError, match=r"duplicate id .*\['a'\]"):
        write_submission([*rows, ("a", "")], tmp_path / "s.csv", competition="rsna", expected_ids=["a", "b"])
    with pytest.raises(ValueError, match="no rows"):
        write_submission([], tmp_path / "s.csv", competition="rsna")  # before: a file with only the header
    assert not (tmp_path / "s.csv").exists()
    write_submission(rows, tmp_path / "s.csv", competition="rsna", expected_ids=["b", "a"])


def test_sample_submission_gives_the_ids(tmp_path):
    (tmp_path / "sample_submission.csv").write_text("id,PredictionString\na_image,none 1 0 0 1 1\ns_study,negative 1 0 0 1 1\n")
    with pytest.raises(ValueError, match=r"1 missing \['s_study'\]"):
        write_submission([("a_image", "none 1 0 0 1 1")], tmp_path / "s.csv",
                         sample_submission=tmp_path / "sample_submission.csv")
    with pytest.raises(ValueError, match="'image_id'"):
        write_submission([("a", "14 1 0 0 1 1")], tmp_path / "s.csv", competition="vinbig",
                         sample_submission=tmp_path / "sample_submission.csv")


def test_boxes_must_lie_within_the_image_when_sizes_are_given(tmp_path):
    row = [("x_image", "opacity 0.5 10 10 400 50")]
    write_submission(row, tmp_path / "s.csv")
    with pytest.raises(ValueError, match="outside the 320 x 256 image"):
        write_submission(row, tmp_path / "s.csv", image_sizes={"x": (320, 256)})


def test_dataframe_in_and_out(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"patientId": ["a", "b"], "PredictionString": ["0.9 1 2 3 4", np.nan]})
    path = write_submission(frame, tmp_path / "s.csv", competition="rsna", expected_ids=["a", "b"])
    back = read_submission_frame(path, "rsna")
    assert list(back.columns) == ["patientId", "PredictionString"]
    assert back["PredictionString"].tolist() == ["0.9 1 2 3 4", ""]
    with pytest.raises(ValueError, match="PredictionString"):
        write_submission(frame.rename(columns={"PredictionString": "p"}), tmp_path / "t.csv", competition="rsna")


def test_min_confidence_and_top_k(tmp_path):
    rows = [("x_image", "opacity 0.2 1 1 5 5 opacity 0.9 10 10 50 50 opacity 0.6 20 20 30 30 none 0.1 0 0 1 1"),
            ("y_image", "opacity 0.1 1 1 5 5"), ("s_study", "negative 0.05 0 0 1 1 typical 0.95 0 0 1 1")]
    path = write_submission(rows, tmp_path / "s.csv", min_confidence=0.3, top_k=1)
    back = read_submission(path, "siim")
    assert back["x_image"].classes == ("opacity", "none") and back["x_image"].scores.tolist() == [0.9, 0.1]
    assert back["y_image"].classes == ("none",)  # nothing left: the competition's "nothing found"
    assert back["s_study"].classes == ("negative", "typical")  # study rows untouched
    path = write_submission([("i", "3 0.2 1 1 5 5")], tmp_path / "v.csv", competition="vinbig", min_confidence=0.5)
    assert read_submission(path, "vinbig")["i"].classes == ("14",)
