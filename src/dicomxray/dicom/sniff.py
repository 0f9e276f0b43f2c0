"""The one answer to "is this a DICOM?": discovery (folders and URL prefixes), the header and the index ask here.

A file is DICOM when it carries the ``DICM`` magic at byte 128 (PS3.10 7.1),
or when it is a bare data set without preamble (PS3.5 7: what old modalities
and some PACS exports write): its first bytes are a plausible data element
(an even group of the header modules, 0002..0028; a known VR, or an implicit
VR length that fits in the file; an even length) and so is the element after
it, when it lies within the bytes read (an even group up to Pixel Data
(7FE0), in tag order).  Both byte orders are tried; implicit VR is little
endian only.  A PS3.10 file whose Media Storage SOP Class is the Media
Storage Directory is a ``DICOMDIR``: an index of files, not an image.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Literal

from .elements import LONG_VRS, OPEN_FLAGS, VRS, dataset_start, pread

__all__ = ["SNIFF_BYTES", "Kind", "classify", "is_dicom", "looks_like_bare_dataset", "sniff"]

#: Bytes read to classify a file without an extension we trust.
SNIFF_BYTES = 512
#: What :func:`classify` says of a file's first bytes; :func:`sniff` adds ``"unreadable"``.
Kind = Literal["dicom", "dicomdir", "other", "unreadable"]
_DIRECTORY_SOP_CLASS = b"1.2.840.10008.1.3.10"
#: Groups a bare data set may start with: the header modules every image has (file meta .. image pixel).
_FIRST_GROUPS = range(0x0002, 0x0029)


def _element(data: bytes, pos: int, order: str) -> tuple[int, int, int] | None:
    """(group, element, end) of a plausible element at ``pos``, explicit or implicit VR (end -1: undefined)."""
    if pos + 8 > len(data):
        return None
    fmt = "<" if order == "little" else ">"
    group, elem = struct.unpack_from(fmt + "HH", data, pos)
    vr = data[pos + 4 : pos + 6]
    if vr in VRS:
        if vr in LONG_VRS:
            if data[pos + 6 : pos + 8] != b"\0\0" or pos + 12 > len(data):
                return None
            (length,) = struct.unpack_from(fmt + "L", data, pos + 8)
            return group, elem, (pos + 12 + length if length != 0xFFFFFFFF else -1)
        (length,) = struct.unpack_from(fmt + "H", data, pos + 6)
        return group, elem, pos + 8 + length
    if order != "little":
        return None  # implicit VR is little endian only
    (length,) = struct.unpack_from("<L", data, pos + 4)
    if length == 0xFFFFFFFF:
        return group, elem, -1
    return group, elem, pos + 8 + length


def looks_like_bare_dataset(head: bytes, size: int) -> bool:
    """Whether ``head`` (the first bytes of a file of ``size`` bytes) starts a data set without preamble.

    The first element must be in an even group 0002..0028 with an even
    length that fits in the file; when the next element starts within
    ``head`` it must follow in tag order, in an even group up to 7FE0.
    """
    for order in ("little", "big"):
        first = _element(head, 0, order)
        if first is None:
            continue
        group, elem, end = first
        if group % 2 or group not in _FIRST_GROUPS or end > size or (end > 0 and end % 2):
            continue
        if end < 0 or end + 8 > len(head):
            return end <= size  # the next element lies beyond what we read: one good element
        second = _element(head, end, order)
        if second is None:
            continue
        g2, e2, end2 = second
        if g2 % 2 == 0 and 0x0002 <= g2 <= 0x7FE0 and (g2, e2) > (group, elem) and end2 <= size:
            return True
    return False


def _is_directory_record_file(head: bytes) -> bool:
    """A PS3.10 file whose Media Storage SOP Class (0002,0002) is the Media Storage Directory (a DICOMDIR)."""
    pos = 132
    while (element := _element(head, pos, "little")) is not None:
        group, elem, end = element
        if group != 0x0002 or end < 0:
            return False
        if elem == 0x0002:
            start = end - struct.unpack_from("<H", head, pos + 6)[0]
            return head[start:end].rstrip(b"\0 ") == _DIRECTORY_SOP_CLASS
        pos = end
    return False


def classify(head: bytes, size: int) -> Kind:
    """``"dicom"``, ``"dicomdir"`` or ``"other"`` from ``head``, the first (up to :data:`SNIFF_BYTES`) bytes
    of a file of ``size`` bytes.  Every consumer decides with this function (see the module docstring)."""
    if dataset_start(head):
        return "dicomdir" if _is_directory_record_file(head) else "dicom"
    return "dicom" if looks_like_bare_dataset(head, size) else "other"


def is_dicom(head: bytes, size: int) -> bool:
    """Whether a file of ``size`` bytes starting with ``head`` is DICOM (a DICOMDIR included): see :func:`classify`."""
    return classify(head, size) != "other"


def sniff(path: str) -> Kind:
    """Classify a local file by its first bytes: :func:`classify`'s answer, or ``"unreadable"`` when it cannot
    be opened or is not a regular file (a FIFO is never blocked on)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return "unreadable"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "unreadable"
        head, size = pread(fd, SNIFF_BYTES, 0), st.st_size
    except OSError:
        return "unreadable"
    finally:
        os.close(fd)
    return classify(head, size)
