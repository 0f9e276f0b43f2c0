"""Which pixel descriptions the pipeline refuses, as one function of the header's values.

:func:`dicomxray.dicom.header.read_header` raises what :func:`pixel_tags_refusal` returns, and the index
records it (``decodable``/``undecodable_reason``), so both give one answer for one file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pydicom.uid import UID

from ..errors import DicomXrayError, ImageTooLargeError, MissingPixelDataError, UnsupportedImageError

__all__ = ["GRAYSCALE", "Refusal", "pixel_tags_refusal"]

#: The photometric interpretations the renderer draws.
GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})


@dataclass(frozen=True)
class Refusal:
    """Why the pipeline will not read a file: the error it raises and what is wrong (without the path)."""

    error: type[DicomXrayError]
    message: str

    def exception(self, path: str) -> DicomXrayError:
        """The error :func:`dicomxray.read_xray` raises for ``path``."""
        return self.error(f"{path}: {self.message}", path=path)

    def __str__(self) -> str:
        """``"ErrorType: message"``, as the index's ``undecodable_reason`` holds it."""
        return f"{self.error.__name__}: {self.message}"


def pixel_tags_refusal(
    *, rows: int, columns: int, frames: int, samples_per_pixel: int, bits_allocated: int, bits_stored: int,
    pixel_representation: int, photometric: str, transfer_syntax: str, encapsulated: bool, max_pixels: int,
) -> Refusal | None:
    """What the pipeline refuses in a file's pixel description, checked in the pipeline's order; ``None`` if nothing.

    Parameters
    ----------
    rows, columns, frames, samples_per_pixel, bits_allocated, bits_stored, pixel_representation
        The Image Pixel module's values (PS3.3 C.7.6.3), defaults applied (1 frame, 1 sample, Bits Stored =
        Bits Allocated, Pixel Representation 0).
    photometric : str
        Photometric Interpretation (any case, spaces allowed).
    transfer_syntax : str
        The file's transfer syntax UID (or the one its encoding implies).
    encapsulated : bool
        Whether Pixel Data has undefined length (PS3.5 A.4).
    max_pixels : int
        The decode limit on Rows x Columns x Frames x Samples.

    Returns
    -------
    Refusal or None
        ``MissingPixelDataError`` (empty size, a syntax that contradicts the element), ``ImageTooLargeError``
        or ``UnsupportedImageError`` (not grayscale, a bit depth or pixel representation not rendered).
    """
    photometric = photometric.strip().upper()
    if rows <= 0 or columns <= 0 or frames <= 0:
        return Refusal(MissingPixelDataError, f"declared image size {rows}x{columns}x{frames} is empty")
    declared = rows * columns * frames * samples_per_pixel
    if declared > max_pixels:
        return Refusal(ImageTooLargeError,
                       f"declares {rows}x{columns} pixels x {frames} frame(s) x {samples_per_pixel} sample(s) = "
                       f"{declared}, over max_pixels={max_pixels}; refusing before allocation")
    if photometric not in GRAYSCALE or samples_per_pixel != 1:
        return Refusal(UnsupportedImageError,
                       f"PhotometricInterpretation {photometric} with {samples_per_pixel} sample(s) per pixel is not a "
                       "grayscale radiograph; dicomxray renders MONOCHROME1/MONOCHROME2 only")
    if bits_allocated not in (8, 16, 32) or not 1 <= bits_stored <= bits_allocated:
        return Refusal(UnsupportedImageError, f"BitsAllocated={bits_allocated}, BitsStored={bits_stored} is not supported")
    if pixel_representation not in (0, 1):
        return Refusal(UnsupportedImageError, f"PixelRepresentation={pixel_representation} is not 0 or 1")
    says = _says_encapsulated(str(transfer_syntax))
    if says is not None and says != encapsulated:
        return Refusal(MissingPixelDataError,
                       f"transfer syntax {transfer_syntax} says {'encapsulated' if says else 'native'} "
                       f"Pixel Data but the element is {'encapsulated' if encapsulated else 'native'}")
    return None


@functools.lru_cache(maxsize=256)
def _says_encapsulated(syntax: str) -> bool | None:
    """Whether a known transfer syntax has encapsulated Pixel Data (``None`` for an unknown UID); cached,
    since building a pydicom UID costs more than every other check here."""
    uid = UID(syntax)
    return uid.is_encapsulated if uid.is_transfer_syntax else None
