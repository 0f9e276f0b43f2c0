from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

SAMPLES = ROOT.parent / "shared" / "dicom-samples"


@pytest.fixture
def samples() -> Path:
    if not (SAMPLES / "SAMPLES.tsv").exists():
        pytest.skip("shared DICOM samples not present")
    return SAMPLES


@pytest.fixture
def phantom() -> np.ndarray:
    from dicomxray.testing import chest_phantom

    return chest_phantom(96, 120, bits=12, seed=1)


@pytest.fixture
def write(tmp_path):
    """write(pixels, name='x.dcm', **kwargs) -> path of a synthetic DICOM in tmp_path."""
    from dicomxray.testing import write_dicom

    counter = iter(range(10**6))

    def _write(pixels, name: str | None = None, **kwargs):
        return write_dicom(tmp_path / (name or f"img{next(counter)}.dcm"), pixels, **kwargs)

    return _write
