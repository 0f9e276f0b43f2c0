"""pydicom's own decoders (with pylibjpeg / pyjpegls plugins when installed): the fallback.

It gets the frame's codestream like every other backend (after the guards) and
hands pydicom a one-frame encapsulated buffer plus the pixel format: no
Dataset is copied.  GDCM is excluded on purpose: it can ``abort()`` the process
on hostile JPEG-LS data and is slow to hand buffers back.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom import uid
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder

from ...dicom.syntaxes import ENCAPSULATED
from ...errors import DecoderUnavailableError
from ._versions import dist_versions

if TYPE_CHECKING:
    from ...dicom.format import PixelFormat

_EXCLUDED = frozenset({"gdcm"})
# What pip would install for each of pydicom's plugins.
_PLUGIN_PACKAGES = {
    "pylibjpeg": ["pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"],
    "pyjpegls": ["pyjpegls"],
    "pillow": ["pillow"],
}


def _plugins(syntax: str) -> list[str]:
    try:
        dec = get_decoder(uid.UID(syntax))
    except NotImplementedError:
        return []
    return [p for p in dec.available_plugins if p not in _EXCLUDED]


class PydicomBackend:
    name = "pydicom"
    packages = ("pydicom",)
    syntaxes = ENCAPSULATED
    threaded: frozenset[str] = frozenset()  # pylibjpeg-openjpeg has no thread option

    def is_available(self, syntax: str) -> bool:
        return bool(_plugins(syntax))

    def missing_packages(self, syntax: str) -> list[str]:
        if self.is_available(syntax):
            return []
        try:
            dec = get_decoder(uid.UID(syntax))
        except NotImplementedError:
            return []
        pkgs: list[str] = []
        for plugin in dec.missing_dependencies:
            for p in _PLUGIN_PACKAGES.get(plugin.split(" ")[0].rstrip(":"), []):
                if p not in pkgs:
                    pkgs.append(p)
        return pkgs

    def versions(self) -> dict[str, str]:
        """pydicom and every package of its plugins (pylibjpeg and its libjpeg, OpenJPEG and RLE codecs...)."""
        return dist_versions(["pydicom", *dict.fromkeys(p for pkgs in _PLUGIN_PACKAGES.values() for p in pkgs)])

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        return 0

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        dec = get_decoder(uid.UID(fmt.transfer_syntax))
        src = encapsulate([bytes(data)])
        options: dict[str, Any] = dict(
            rows=fmt.rows, columns=fmt.columns, samples_per_pixel=fmt.samples_per_pixel,
            bits_allocated=fmt.bits_allocated, bits_stored=fmt.bits_stored, pixel_representation=int(fmt.signed),
            photometric_interpretation="MONOCHROME2", number_of_frames=1)
        errors = []
        gaps = True
        for plugin in _plugins(fmt.transfer_syntax):  # in turn, but only past plugins that lack a feature
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    arr, _meta = dec.as_array(src, index=0, raw=True, decoding_plugin=plugin, **options)
                return arr, 0
            except Exception as exc:
                errors.append(f"{plugin}: {exc}")
                if not _is_capability_gap(exc):
                    gaps = False
                    break  # the data itself was rejected: another plugin accepting it could return garbage
        if gaps:  # every plugin lacks a feature this stream needs: no verdict on the data
            raise DecoderUnavailableError("; ".join(errors) or "no pydicom decoding plugin available")
        raise RuntimeError("; ".join(errors))


def _is_capability_gap(exc: Exception) -> bool:
    """Pillow has no 12-bit JPEG, for instance: that is no verdict on the data."""
    text = str(exc).lower()
    return isinstance(exc, (NotImplementedError, ImportError)) or "does not support" in text or "not supported" in text


BACKEND = PydicomBackend()
