"""What the index promises about a file: whether :func:`dicomxray.read_xray` would refuse it for anything its
header says, and why (``undecodable_reason``).

No rule is written here: the pixel description goes through
:func:`dicomxray.dicom.refusal.pixel_tags_refusal` (what :func:`~dicomxray.dicom.header.read_header` raises),
the display tags through the pipeline's own :meth:`~dicomxray.pixels.pipeline.Pipeline.render` on a one-pixel
stand-in (so a broken LUT Sequence item or an unknown VOI LUT Function is refused as it would be), and the
transfer syntax through the decoders installed where the index is written (:func:`decoder_reason`).  The
default :class:`~dicomxray.config.PipelineConfig` is assumed (its ``max_pixels``, VOI index 0).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..dicom.syntaxes import DEFLATED
from ..errors import DecoderUnavailableError, DicomXrayError

__all__ = ["DISPLAY_SEQUENCES", "DISPLAY_TAGS", "NO_DECODER", "NO_DECODER_TEXT", "decoder_reason", "header_dataset",
           "header_refusal", "walked_display"]

#: Top-level display tags the header walk keeps raw for :func:`header_refusal` (tag -> (name, kind)).
DISPLAY_TAGS: dict[int, tuple[str, str]] = {
    0x00281051: ("_WindowWidth", "display"), 0x00281052: ("_RescaleIntercept", "display"),
    0x00281053: ("_RescaleSlope", "display"), 0x00281056: ("_VOILUTFunction", "display"),
    0x20500020: ("_PresentationLUTShape", "display"), 0x00283000: ("_ModalityLUTSequence", "seq"),
    0x52009229: ("_SharedFunctionalGroupsSequence", "seq"), 0x52009230: ("_PerFrameFunctionalGroupsSequence", "seq"),
}
_WINDOW_CENTER = 0x00281050
#: Sequences whose items the walk does not keep: a file holding one is read again with pydicom.
DISPLAY_SEQUENCES = frozenset({0x00283000, 0x00283010, 0x52009229, 0x52009230})
#: The prefix of a reason that depends on the installed decoders (recomputed at every write).
NO_DECODER = DecoderUnavailableError.__name__ + ": "
NO_DECODER_TEXT = NO_DECODER + "no installed decoder here for transfer syntax "
_PLACEHOLDER = "<file>"


def _int(row: Mapping[str, Any], name: str, default: int) -> int:
    value = row.get(name)
    return default if value is None else int(value)


def header_refusal(row: Mapping[str, Any], ds: Any) -> str | None:
    """``"ErrorType: message"`` when the pipeline refuses the file whose index row is ``row``, else ``None``.

    Parameters
    ----------
    row : mapping
        The row's pixel description (``Rows``, ``Columns``, ``BitsAllocated``... as the header walk read
        them; absent values ``None``), ``TransferSyntaxUID`` and ``pixel_data_length`` (-1: encapsulated).
    ds : pydicom Dataset
        The file's display tags (the whole header, or the top-level values the walk kept).
    """
    from pydicom.uid import UID

    from ..dicom.header import Header
    from ..dicom.refusal import pixel_tags_refusal
    from ..io.identity import FileIdentity
    pipeline = _pipeline()
    rows, columns, bits = _int(row, "Rows", 0), _int(row, "Columns", 0), _int(row, "BitsAllocated", 0)
    frames, samples = int(row.get("NumberOfFrames") or 1), _int(row, "SamplesPerPixel", 1)
    bits_stored, representation = _int(row, "BitsStored", bits), _int(row, "PixelRepresentation", 0)
    photometric = str(row.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    syntax = str(row["TransferSyntaxUID"])
    encapsulated = row["pixel_data_length"] == -1 and syntax != DEFLATED  # a Deflated row read by pydicom has no length
    refusal = pixel_tags_refusal(rows=rows, columns=columns, frames=frames, samples_per_pixel=samples,
                                 bits_allocated=bits, bits_stored=bits_stored, pixel_representation=representation,
                                 photometric=photometric, transfer_syntax=syntax, encapsulated=encapsulated,
                                 max_pixels=pipeline.config.decode.max_pixels)
    if refusal is not None:
        return str(refusal)
    key = None
    if isinstance(ds, _Walked):  # same raw values, same verdict: each set is judged once
        key = (ds.pattern(), photometric, bits, bits_stored, representation, encapsulated, syntax)
        if key in _VERDICTS:
            return _VERDICTS[key]
        ds = ds.dataset()
    header = Header(_PLACEHOLDER, _values(ds), memoryview(b""), UID(syntax), rows, columns, frames, samples, bits, bits_stored,
                    representation, photometric, FileIdentity(_PLACEHOLDER, 0, 0, 0, 0))
    reason = _render(pipeline, header)
    if key is not None:
        if len(_VERDICTS) >= _MAX_VERDICTS:
            _VERDICTS.clear()
        _VERDICTS[key] = reason
    return reason


@functools.cache
def _pipeline() -> Any:
    from ..pixels.pipeline import Pipeline

    return Pipeline()


_VERDICTS: dict[Any, str | None] = {}
_MAX_VERDICTS = 4096


def _render(pipeline: Any, header: Any) -> str | None:
    """The pipeline's render of a one-pixel stand-in of ``header``: the reason it refuses, or ``None``."""
    from ..pixels.decode import DecodeResult

    kind = "i" if header.signed else "u"
    stand_in = DecodeResult(np.zeros((1, 1), f"{kind}{header.bits_allocated // 8}"), "", 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline.render(header, stand_in)
    except DicomXrayError as exc:
        return f"{type(exc).__name__}: {str(exc).removeprefix(_PLACEHOLDER + ': ')}"
    return None


class _Values:
    """A data set's top-level values converted once (pydicom's conversion), read by keyword like a Dataset."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self._values


def _values(ds: Any) -> Any:
    """``ds`` as :class:`_Values` when every element converts; else ``ds`` itself (the pipeline then meets the
    bad element as it would)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _Values({elem.keyword: elem.value for elem in ds if elem.keyword})
    except Exception:  # a mangled value: display_tags reports it from the Dataset
        return ds


#: Decimal-string display tags whose numbers matter to the pipeline only through their class (see _Walked.pattern).
_WINDOW_WIDTH, _RESCALE_SLOPE = 0x00281051, 0x00281053
_NUMERIC = frozenset({_WINDOW_CENTER, _WINDOW_WIDTH, 0x00281052, _RESCALE_SLOPE})


def _number_class(tag: int, text: str) -> str:
    """What the pipeline's verdict can depend on in one finite decimal string: a window width's validity
    (< 1 is skipped), a rescale slope's sign (zero flattens the image).  ``ValueError`` when it is not one."""
    if "_" in text:
        raise ValueError(text)  # Python's float() reads "1_0", a decimal string may not: judge the bytes
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)  # each non-finite spelling judged on its own bytes
    if tag == _WINDOW_WIDTH:  # <= 0 and (0, 1) differ: some VOI LUT Functions keep a width in (0, 1)
        return "w<=0" if value <= 0 else "w<1" if value < 1 else "w"
    if tag == _RESCALE_SLOPE:
        return "0" if value == 0 else "+" if value > 0 else "-"
    return "n"


class _Walked:
    """The raw display values the header walk kept: hashable, converted by pydicom only when judged."""

    __slots__ = ("little", "raw")

    def __init__(self, raw: tuple[tuple[int, bytes], ...], little: bool) -> None:
        self.raw, self.little = raw, little

    def pattern(self) -> tuple[Any, ...]:
        """The raw values with every well-formed number replaced by its class: files with their own windows
        (every film of a real archive) share a verdict, judged once, instead of one render each. A value that
        does not parse keeps its bytes, so it is judged on its own."""
        out: list[Any] = []
        for tag, value in self.raw:
            if tag in _NUMERIC:
                try:
                    parts = value.decode("ascii").strip(" \0").split("\\")
                    out.append((tag, tuple(_number_class(tag, p.strip(" \0")) for p in parts)))
                    continue
                except (UnicodeDecodeError, ValueError):
                    pass
            out.append((tag, value))
        return tuple(out)

    def dataset(self) -> Any:
        from pydicom.dataelem import RawDataElement
        from pydicom.dataset import Dataset
        from pydicom.tag import Tag

        return Dataset({Tag(t): RawDataElement(Tag(t), None, len(v), v, 0, True, self.little) for t, v in self.raw})


def walked_display(found: Mapping[int, Any], little: bool) -> Any:
    """The display tags the header walk kept (raw values; pydicom converts them as it converts a file's), or
    ``None`` when the file holds a display sequence (then read it with pydicom)."""
    if any(found.get(tag) for tag in DISPLAY_SEQUENCES):
        return None
    tags = (_WINDOW_CENTER, *(t for t, (_, kind) in DISPLAY_TAGS.items() if kind == "display"))
    return _Walked(tuple((t, bytes(found[t])) for t in tags if found.get(t) is not None), little)


def header_dataset(reader: Any) -> Any:
    """The whole header of an open file (:class:`dicomxray.index.scan.Reader`) through pydicom, without Pixel Data."""
    import pydicom

    with reader.open() as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(fh, force=True, stop_before_pixels=True)


def decoder_reason(syntax: str | None, backend: str | None, reason: str | None) -> str | None:
    """A readable row's ``undecodable_reason`` on this machine: its header's reason, else the missing decoder's
    (a reason about decoders, from an earlier write, is dropped first: the installed ones decide again)."""
    if reason and not reason.startswith(NO_DECODER):
        return reason
    return None if backend is not None or syntax is None else NO_DECODER_TEXT + syntax
