"""The classic Kaggle ``read_xray`` recipe, written here as the baseline.

pydicom ``pixel_array`` -> ``apply_voi_lut`` (float64) -> MONOCHROME1
inversion -> min-max -> ``* 255`` -> ``astype(uint8)`` -> PIL LANCZOS.
It ignores the Modality LUT (so a negative Rescale Slope comes out inverted);
dicomxray differs there on purpose.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_voi_lut


def classic_read_xray(path: str, size: int | None = None, *, keep_ratio: bool = False) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        data = apply_voi_lut(ds.pixel_array, ds)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        data = np.amax(data) - data
    data = data - np.min(data)
    data = data / np.max(data)
    data = (data * 255).astype(np.uint8)
    if size is None:
        return data
    im = Image.fromarray(data)
    if keep_ratio:
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    else:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im)
