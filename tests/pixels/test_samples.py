"""The real files in ../shared/dicom-samples (skipped when the folder is absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dicomxray import CorruptPixelDataError, load_xray, read_xray
from dicomxray.testing import classic_read_xray

# Where the classic recipe is itself wrong or cannot run, with the reason.
CLASSIC_WRONG = {
    "cr_chest_mono1_10bit_nometa_ts.dcm": "pydicom cannot decode without a Transfer Syntax UID",
    "cr_modality_lut_sequence_jpeg_lossless.dcm": "the recipe ignores the Modality LUT Sequence",
    "mr_truncated_pixels.dcm": "truncated",
    "cxr_siim_jpeg_baseline_mono2.dcm": "lossy JPEG: pydicom's decoder rounds differently",
    "cxr_siim_jpeg_baseline_fake_mono1.dcm": "lossy JPEG: pydicom's decoder rounds differently",
}


def _names(samples):
    with open(samples / "SAMPLES.tsv") as fh:
        return [row["file"] for row in csv.DictReader(fh, delimiter="\t")]


def test_every_sample_reads_or_fails_clearly(samples):
    for name in _names(samples):
        path = samples / name
        if name == "mr_truncated_pixels.dcm":
            with pytest.raises(CorruptPixelDataError, match=name):
                read_xray(path)
            continue
        full = read_xray(path)
        assert full.min() == 0 and full.max() == 255, name
        assert read_xray(path, 64).shape == (64, 64), name


def test_parity_with_classic_where_it_is_correct(samples):
    for name in _names(samples):
        if name in CLASSIC_WRONG:
            continue
        ours, theirs = read_xray(samples / name), classic_read_xray(str(samples / name))
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1, name


def test_fake_mono1_is_the_inverse(samples):
    a = read_xray(samples / "cxr_siim_jpeg_baseline_mono2.dcm").astype(int)
    b = read_xray(samples / "cxr_siim_jpeg_baseline_fake_mono1.dcm").astype(int)
    assert np.abs(a - (255 - b)).max() <= 1


def test_no_transfer_syntax_falls_back_to_implicit_le(samples):
    meta = load_xray(samples / "cr_chest_mono1_10bit_nometa_ts.dcm").meta
    assert meta.transfer_syntax == "1.2.840.10008.1.2" and meta.inverted


def test_modality_lut_sequence_sample_uses_the_lut(samples):
    meta = load_xray(samples / "cr_modality_lut_sequence_jpeg_lossless.dcm").meta
    assert meta.modality_lut == "lut" and meta.decoder == "imagecodecs"


def test_lossy_and_lossless_rg3_agree(samples):
    a = read_xray(samples / "cr_rg3_j2k_lossy_mono1.dcm", 256).astype(float)
    b = read_xray(samples / "cr_rg3_jpegls_lossless_mono1.dcm", 256).astype(float)
    assert 10 * np.log10(255**2 / np.mean((a - b) ** 2)) > 30
