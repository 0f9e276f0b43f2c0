"""Synthetic DICOM radiographs and SIIM-COVID-shaped folders.

Used by the tests (which must make their own data), ``make demo``, the benchmarks and the examples; never by the
library itself.  The images look like chest films: a body silhouette, two lung fields, mediastinum, ribs, texture
and quantum noise, so compression ratios are realistic (about 2-3x against 16-bit), and optional opacities inside
given boxes give a learnable signal.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence

from ..dicom.syntaxes import ENCAPSULATED, JPEG_XL, JPEG_XL_LOSSLESS

__all__ = ["ENCODABLE_SYNTAXES", "SiimSynthSummary", "chest_phantom", "make_siim_dataset",
           "write_dicom", "write_siim_csvs"]

Box = tuple[float, float, float, float]

#: Transfer syntaxes :func:`write_dicom` can write.
ENCODABLE_SYNTAXES: tuple[str, ...] = (
    uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian,
    uid.DeflatedExplicitVRLittleEndian, uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
    uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000,
    uid.HTJ2KLossless, uid.HTJ2K, uid.RLELossless, JPEG_XL_LOSSLESS,
)
_LOSSLESS = frozenset({uid.JPEGLossless, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEG2000Lossless,
                       uid.HTJ2KLossless, uid.RLELossless, JPEG_XL_LOSSLESS})


def _encode_frame(arr: np.ndarray, syntax: str, bits_stored: int) -> bytes:
    import imagecodecs as ic

    if syntax == uid.JPEGBaseline8Bit:
        return bytes(ic.jpeg8_encode(arr.astype(np.uint8), level=92))
    if syntax == uid.JPEGExtended12Bit:
        return bytes(ic.jpeg8_encode(arr.astype(np.uint16), level=92, bitspersample=12))
    if syntax in (uid.JPEGLossless, uid.JPEGLosslessSV1):
        predictor = 1 if syntax == uid.JPEGLosslessSV1 else 6
        return bytes(ic.jpeg8_encode(arr, lossless=True, predictor=predictor, bitspersample=bits_stored))
    if syntax == uid.JPEGLSLossless:
        return bytes(ic.jpegls_encode(arr, level=0))
    if syntax == uid.JPEGLSNearLossless:
        return bytes(ic.jpegls_encode(arr, level=2))
    if syntax == uid.JPEG2000Lossless:
        return bytes(ic.jpeg2k_encode(arr, codecformat="J2K", reversible=True, bitspersample=bits_stored, resolutions=6))
    if syntax == uid.JPEG2000:
        return bytes(ic.jpeg2k_encode(arr, level=60, codecformat="J2K", reversible=False, bitspersample=bits_stored,
                                      resolutions=6))
    if syntax == uid.HTJ2KLossless:
        return bytes(ic.htj2k_encode(arr, reversible=True, resolutions=6))
    if syntax == uid.HTJ2K:
        return bytes(ic.htj2k_encode(arr, level=0.0001, reversible=False, resolutions=6))
    if syntax in JPEG_XL:
        return bytes(ic.jpegxl_encode(arr, lossless=syntax == JPEG_XL_LOSSLESS, level=None if syntax == JPEG_XL_LOSSLESS else 95,
                                      bitspersample=bits_stored))
    if syntax == uid.RLELossless:
        from pydicom.pixels.encoders import RLELosslessEncoder

        return bytes(RLELosslessEncoder.encode(
            arr, rows=arr.shape[0], columns=arr.shape[1], samples_per_pixel=1,
            bits_allocated=arr.dtype.itemsize * 8, bits_stored=bits_stored,
            pixel_representation=int(arr.dtype.kind == "i"), photometric_interpretation="MONOCHROME2",
            number_of_frames=1, encoding_plugin="pydicom",
        ))
    raise ValueError(f"cannot encode transfer syntax {syntax}")


def _lut_item(first: int, data: np.ndarray, bits: int) -> Dataset:
    item = Dataset()
    descriptor = [len(data) if len(data) < 65536 else 0, int(first), int(bits)]
    item.add_new(0x00283002, "US" if first >= 0 else "SS", descriptor)  # LUT Descriptor
    item.add_new(0x00283006, "US", [int(v) for v in data])  # LUT Data
    return item


def write_dicom(*args: Any, **kwargs: Any) -> Path:
    """Write a synthetic DICOM (see :func:`_write_dicom`); pydicom's UID-format warnings are silenced,
    since SIIM-style 12-hex UIDs are what the real data set holds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _write_dicom(*args, **kwargs)


def _write_dicom(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    syntax: str = uid.ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    window: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
    voi_function: str | None = None,
    rescale: tuple[float, float] | None = None,
    voi_lut: tuple[int, np.ndarray, int] | None = None,
    modality_lut: tuple[int, np.ndarray, int] | None = None,
    presentation_lut_shape: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str = "ANON",
    extra: dict[str, Any] | None = None,
    file_meta_syntax: bool = True,
) -> Path:
    """Write stored values ``pixels`` (2-D, or 3-D for frames) as a DICOM file.

    ``pixels`` must already be integers of the intended Bits Allocated
    (uint8/uint16/int16...).  Returns the path written.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype.kind not in "ui":
        raise ValueError("pixels must be an integer array")
    frames = pixels[None] if pixels.ndim == 2 else pixels
    bits_allocated = pixels.dtype.itemsize * 8
    bits_stored = bits_stored or bits_allocated
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = sop_uid or uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or uid.generate_uid()
    ds.SeriesInstanceUID = series_uid or uid.generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "Synthetic^Patient"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    if window is not None:
        wins: list[Any] = [window] if isinstance(window[0], (int, float)) else list(window)
        ds.WindowCenter = [float(c) for c, _ in wins] if len(wins) > 1 else float(wins[0][0])
        ds.WindowWidth = [float(w) for _, w in wins] if len(wins) > 1 else float(wins[0][1])
    if voi_function:
        ds.VOILUTFunction = voi_function
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = float(rescale[0]), float(rescale[1])
        ds.RescaleType = "US"
    if voi_lut is not None:
        ds.VOILUTSequence = DicomSequence([_lut_item(*voi_lut)])
    if modality_lut is not None:
        ds.ModalityLUTSequence = DicomSequence([_lut_item(*modality_lut)])
        ds.ModalityLUTSequence[0].ModalityLUTType = "US"
    if presentation_lut_shape:
        ds.PresentationLUTShape = presentation_lut_shape
    for key, value in (extra or {}).items():
        setattr(ds, key, value)

    syntax = uid.UID(syntax)
    if syntax in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian):
        ds.PixelData = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
    elif syntax == uid.ExplicitVRBigEndian:
        ds.PixelData = frames.astype(frames.dtype.newbyteorder(">")).tobytes()
    else:
        ds.PixelData = encapsulate([_encode_frame(f, syntax, bits_stored) for f in frames])
        if syntax not in _LOSSLESS:
            ds.LossyImageCompression = "01"
    ds["PixelData"].VR = "OB" if bits_allocated == 8 or syntax in ENCAPSULATED else "OW"
    # pydicom 3.0 refuses to write the JPEG XL syntaxes it does not know: write a known one of the same
    # length (MPEG2 Main Profile, also encapsulated) and patch the UID in the file meta.
    stand_in = uid.UID("1.2.840.10008.1.2.4.100") if syntax in JPEG_XL else None
    ds.file_meta.TransferSyntaxUID = stand_in or syntax
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    if stand_in:
        data = path.read_bytes()
        path.write_bytes(data.replace(stand_in.encode(), syntax.encode(), 1))
    if not file_meta_syntax:
        _strip_transfer_syntax(path)
    return path


def _strip_transfer_syntax(path: Path) -> None:
    """Rewrite ``path`` with a file meta that lacks (0002,0010), as some modalities do."""
    import pydicom
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = pydicom.dcmread(path)
    del ds.file_meta.TransferSyntaxUID
    with open(path, "wb") as raw:
        fh = DicomFileLike(raw)
        fh.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(fh, ds.file_meta, enforce_standard=False)
        fh.is_little_endian, fh.is_implicit_VR = True, True
        write_dataset(fh, ds)


def chest_phantom(
    height: int,
    width: int,
    *,
    bits: int = 12,
    seed: int = 0,
    opacities: Sequence[Box] = (),
    noise: float = 6.0,
) -> np.ndarray:
    """A chest-film-like image of stored values in ``[0, 2**bits)``, dtype uint16 (uint8 when bits <= 8).

    Bright means dense (MONOCHROME2 convention): lungs are dark, mediastinum,
    ribs and soft tissue brighter.  ``opacities`` are xyxy boxes in pixels;
    each gets a soft bright blob inside, like a consolidation.
    """
    rng = np.random.default_rng(seed)
    lh, lw = max(8, height // 8), max(8, width // 8)
    y, x = np.mgrid[0:lh, 0:lw].astype(np.float32)
    y /= lh
    x /= lw
    body = np.exp(-(((x - 0.5) / 0.42) ** 8 + ((y - 0.55) / 0.55) ** 8))
    img = 0.55 * body
    for cx in (0.32 + rng.normal(0, 0.01), 0.68 + rng.normal(0, 0.01)):
        lung = np.exp(-(((x - cx) / 0.14) ** 2 + ((y - 0.48) / 0.27) ** 4))
        img -= 0.32 * lung
    img += 0.25 * np.exp(-(((x - 0.5) / 0.07) ** 2)) * (y > 0.15)  # mediastinum/spine
    img += 0.12 * np.exp(-(((x - 0.55) / 0.12) ** 2 + ((y - 0.68) / 0.09) ** 2))  # heart
    ribs = 0.5 + 0.5 * np.sin(2 * np.pi * (y * 9 + 0.8 * np.abs(x - 0.5) ** 1.5 * 4))
    img += 0.05 * ribs * body
    small = np.clip(img, 0, 1).astype(np.float32)
    big = np.array(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    if opacities:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        for x0, y0, x1, y1 in opacities:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            sx, sy = max(2.0, (x1 - x0) / 3), max(2.0, (y1 - y0) / 3)
            big += 0.3 * np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2)
    top = (1 << bits) - 1
    tex = rng.normal(0, 1, (max(4, height // 16), max(4, width // 16))).astype(np.float32)
    texture = np.asarray(Image.fromarray(tex).resize((width, height), Image.Resampling.BILINEAR))
    out = big * 0.8 * top + 0.1 * top + texture * top * 0.01 + rng.normal(0, noise, (height, width))
    dtype = np.uint8 if bits <= 8 else np.uint16
    return np.clip(np.rint(out), 0, top).astype(dtype)


@dataclass(frozen=True)
class SiimSynthSummary:
    """What :func:`make_siim_dataset` wrote."""

    root: Path
    images: int
    studies: int
    boxes: int


_CLASSES = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")


def _hex_id(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), 12))


def write_siim_csvs(root: str | os.PathLike[str], images: Iterable[tuple[str, str, int, Sequence[Box]]]) -> Path:
    """Write SIIM's ``train_study_level.csv`` and ``train_image_level.csv`` under ``root``.

    Parameters
    ----------
    root : path-like
        The folder (created if needed).
    images : iterable of (study_id, image_id, study_class, boxes)
        One entry per image.  ``study_class`` is 0 negative, 1 typical, 2 indeterminate or 3 atypical (the
        first image of a study sets its class); ``boxes`` are xyxy in pixels, written as SIIM's ``{'x', 'y', 'width', 'height'}``
        literals and as an ``opacity 1 x0 y0 x1 y1`` label (``none 1 0 0 1 1`` without boxes).

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    study_rows: dict[str, list[object]] = {}
    image_rows: list[list[object]] = []
    for study_id, image_id, cls, boxes in images:
        study_rows.setdefault(study_id, [f"{study_id}_study", *(int(i == cls) for i in range(len(_CLASSES)))])
        if boxes:
            literal = "[" + ", ".join(
                f"{{'x': {x0:.5f}, 'y': {y0:.5f}, 'width': {x1 - x0:.5f}, 'height': {y1 - y0:.5f}}}"
                for x0, y0, x1, y1 in boxes) + "]"
            label = " ".join(f"opacity 1 {x0:.5f} {y0:.5f} {x1:.5f} {y1:.5f}" for x0, y0, x1, y1 in boxes)
        else:
            literal, label = "", "none 1 0 0 1 1"
        image_rows.append([f"{image_id}_image", literal, label, study_id])
    with open(root / "train_study_level.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *_CLASSES])
        writer.writerows(study_rows.values())
    with open(root / "train_image_level.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "boxes", "label", "StudyInstanceUID"])
        writer.writerows(image_rows)
    return root


def make_siim_dataset(
    root: str | os.PathLike[str],
    *,
    studies: int = 24,
    size: tuple[int, int] = (1024, 1280),
    seed: int = 0,
    syntaxes: Sequence[str] = (uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.RLELossless,
                               uid.HTJ2KLossless),
) -> SiimSynthSummary:
    """Write a SIIM-FISABIO-RSNA-shaped folder: ``train/<study>/<series>/<image>.dcm`` and both CSVs.

    Classes carry a learnable signal: negatives have no opacity; typical
    studies two bilateral opacities; indeterminate one; atypical one small
    peripheral one.  Images alternate MONOCHROME1/MONOCHROME2 (MONOCHROME1
    stores inverted values) and cycle through ``syntaxes``; sizes vary around
    ``size`` (height, width), mostly landscape like the real set.

    Parameters
    ----------
    root : path-like
        The folder to write (created if needed).
    studies : int
        How many studies, one image each; classes cycle negative, typical, indeterminate, atypical.
    size : (int, int)
        Nominal (height, width) of the images.
    seed : int
        Seed of the ids, sizes, boxes and pixels.
    syntaxes : sequence of str
        Transfer syntaxes, cycled over the images.

    Returns
    -------
    SiimSynthSummary
        What was written.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    images: list[tuple[str, str, int, Sequence[Box]]] = []
    n_boxes = 0
    for s in range(studies):
        cls = s % 4
        study_id, series_id, image_id = _hex_id(rng), _hex_id(rng), _hex_id(rng)
        h = int(size[0] * rng.uniform(0.85, 1.1))
        w = int(size[1] * rng.uniform(0.85, 1.1))
        boxes: list[Box] = []
        if cls in (1, 2):
            for side in ((0.2, 0.68) if cls == 1 else (rng.choice([0.2, 0.68]),)):
                bx, by = side * w + rng.uniform(-0.03, 0.03) * w, rng.uniform(0.25, 0.45) * h
                boxes.append((bx, by, bx + 0.16 * w, by + 0.3 * h))
        elif cls == 3:
            bx, by = rng.uniform(0.12, 0.2) * w, rng.uniform(0.5, 0.6) * h
            boxes.append((bx, by, bx + 0.1 * w, by + 0.12 * h))
        stored = chest_phantom(h, w, bits=12, seed=seed * 1000 + s, opacities=boxes)
        mono1 = s % 2 == 1
        if mono1:
            stored = (4095 - stored).astype(np.uint16)
        syntax = syntaxes[s % len(syntaxes)]
        write_dicom(
            root / "train" / study_id / series_id / f"{image_id}.dcm", stored, syntax=syntax,
            photometric="MONOCHROME1" if mono1 else "MONOCHROME2", bits_stored=12,
            study_uid=study_id, series_uid=series_id, sop_uid=image_id, patient_id=f"P{s // 2:04d}",
        )
        n_boxes += len(boxes)
        images.append((study_id, image_id, cls, boxes))
    write_siim_csvs(root, images)
    return SiimSynthSummary(root, len(images), studies, n_boxes)
