"""The classic Kaggle ``read_xray`` recipe: the baseline for parity tests and for speed.

Written here (our own code): pydicom ``pixel_array`` -> ``apply_voi_lut`` (float64) -> MONOCHROME1 inversion ->
min-max -> ``* 255`` -> ``astype(uint8)`` -> PIL LANCZOS.  It ignores the Modality LUT (so a negative Rescale
Slope comes out inverted); dicomxray differs there on purpose.

It runs on one thread: pydicom's pixel decoders (pylibjpeg's libjpeg, OpenJPEG and RLE plugins, or its own numpy
handlers), numpy's elementwise arithmetic and Pillow's resize are serial, so its CPU time is its wall time and a
per-CPU comparison (``read_xray`` with ``DecodeConfig(threads=1)``) compares one core with one core.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = ["classic_read_xray"]


def classic_read_xray(path: str | os.PathLike[str], size: int | None = None, *, keep_ratio: bool = False) -> np.ndarray:
    """The notebook recipe everyone copies, as the baseline for parity and speed.

    Parameters
    ----------
    path : path-like
        A DICOM file.
    size : int, optional
        Resize (PIL LANCZOS) to ``size`` x ``size``; default: the stored size.
    keep_ratio : bool
        Fit inside ``size`` x ``size`` keeping the aspect ratio (``Image.thumbnail``) instead.

    Returns
    -------
    numpy.ndarray
        uint8, 2-D.
    """
    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_voi_lut

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
