"""Smoke tests: each example runs a few steps on a tiny synthetic SIIM folder."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from dicomxray.testing import make_siim_dataset

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def siim(tmp_path_factory):
    root = tmp_path_factory.mktemp("siim")
    make_siim_dataset(root, studies=16, size=(160, 200), seed=3)
    return root


def run(script: str, *args: str, cwd: Path) -> str:
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_classifier(siim, tmp_path):
    out = run("train_classifier.py", "--data", str(siim), "--size", "64", "--epochs", "1", "--max-steps", "2",
              "--batch-size", "4", "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "ck"), cwd=tmp_path)
    assert "val loss" in out and "SIIM study mAP@0.5" in out and (tmp_path / "ck" / "classifier.pt").exists()


def test_detector_writes_a_submission(siim, tmp_path):
    out = run("train_detector.py", "--data", str(siim), "--size", "64", "--epochs", "1", "--max-steps", "2",
              "--batch-size", "4", "--cache-dir", str(tmp_path / "c"), "--submission", str(tmp_path / "sub.csv"),
              cwd=tmp_path)
    assert "val SIIM image mAP@0.5" in out
    with open(tmp_path / "sub.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["id"].endswith("_image") for r in rows)
    for r in rows:
        tokens = r["PredictionString"].split()
        assert tokens[0] in ("opacity", "none") and len(tokens) % 6 == 0


def test_preview(siim, tmp_path):
    run("preview.py", "--data", str(siim), "--size", "64", "--out", str(tmp_path), cwd=tmp_path)
    assert (tmp_path / "preview_before.png").exists() and (tmp_path / "preview_after.png").exists()


def test_predict_writes_a_submission_from_an_unlabelled_folder(tmp_path):
    import pydicom

    from dicomxray.labels import read_submission

    out = run("predict.py", cwd=tmp_path)  # no arguments: a synthetic unlabelled test folder, made once
    test = tmp_path / "demo_out" / "siim-examples" / "test"
    assert "submission:" in out and not list(test.rglob("*.csv"))
    rows = read_submission(tmp_path / "submission.csv", "siim")  # header, suffixes, token groups all checked
    files = sorted(test.rglob("*.dcm"))
    assert {f"{p.stem}_image" for p in files} | {f"{p.parent.parent.name}_study" for p in files} == set(rows)
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        pred = rows[f"{p.stem}_image"]
        opacity = pred.boxes[[c == "opacity" for c in pred.classes]]
        assert (opacity[:, [0, 2]] <= ds.Columns).all() and (opacity[:, [1, 3]] <= ds.Rows).all()
        assert pred.classes[-1] == "none"


def test_segmentation_prints_dice(tmp_path):
    out = run("train_segmentation.py", "--size", "48", "--epochs", "1", "--max-steps", "2", "--batch-size", "4",
              "--cache-dir", str(tmp_path / "c"), cwd=tmp_path)  # a synthetic SIIM-ACR folder, non-square films
    assert "val Dice" in out and (tmp_path / "demo_out" / "siim-acr-examples" / "train-rle.csv").exists()


def test_multilabel_prints_mean_auc_over_known_labels(tmp_path):
    out = run("train_multilabel.py", "--size", "48", "--epochs", "1", "--max-steps", "2", "--batch-size", "4",
              "--cache-dir", str(tmp_path / "c"), cwd=tmp_path)
    assert "val mean AUC" in out
