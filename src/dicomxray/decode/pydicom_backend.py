"""pydicom's own decoders (with pylibjpeg / pyjpegls plugins when installed): the fallback.

GDCM is excluded on purpose: it can ``abort()`` the process on hostile JPEG-LS
data and is slow to hand buffers back (ARCHITECTURE.md, hazards).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from pydicom import uid
from pydicom.pixels.decoders.base import get_decoder

from ._syntaxes import ENCAPSULATED

if TYPE_CHECKING:
    from ..header import Header

NAME = "pydicom"
PACKAGES = ("pydicom",)
SYNTAXES = frozenset(uid.PrivateTransferSyntaxes) | ENCAPSULATED
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


def is_available(syntax: str | None = None) -> bool:
    if syntax is None:
        return True
    return bool(_plugins(syntax))


def missing_packages(syntax: str | None = None) -> list[str]:
    if syntax is None or is_available(syntax):
        return []
    try:
        dec = get_decoder(uid.UID(syntax))
    except NotImplementedError:
        return []
    pkgs: list[str] = []
    for plugin in dec.missing_dependencies:
        name = plugin.split(" ")[0].rstrip(":")
        for p in _PLUGIN_PACKAGES.get(name, []):
            if p not in pkgs:
                pkgs.append(p)
    return pkgs


def decode(header: Header, frame: int, reduce: int = 0) -> tuple[np.ndarray, int]:
    plugins = _plugins(header.transfer_syntax)
    if not plugins:
        raise RuntimeError("no pydicom decoding plugin available")
    dec = get_decoder(header.transfer_syntax)
    ds = header.ds.copy()  # the header's dataset holds no Pixel Data (read zero-copy); give pydicom one
    ds.PixelData = bytes(header.pixel_data)
    if header.transfer_syntax.is_encapsulated:
        ds["PixelData"].is_undefined_length = True
    errors = []
    for plugin in plugins:  # in turn (GDCM excluded), but only past plugins that lack a feature
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr, _meta = dec.as_array(ds, index=frame, raw=True, decoding_plugin=plugin)
            return arr, 0
        except Exception as exc:
            errors.append(f"{plugin}: {exc}")
            if not _is_capability_gap(exc):
                break  # the data itself was rejected: another plugin accepting it could return garbage
    raise RuntimeError("; ".join(errors))


def _is_capability_gap(exc: Exception) -> bool:
    """Pillow has no 12-bit JPEG, for instance: that is no verdict on the data."""
    text = str(exc).lower()
    return isinstance(exc, (NotImplementedError, ImportError)) or "does not support" in text or "not supported" in text
