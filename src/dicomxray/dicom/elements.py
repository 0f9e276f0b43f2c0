"""Walking DICOM data elements (PS3.5 section 7) without building a data set.

The walk reads a bounded prefix of the file and steps over every value it
does not need without reading it: a value outside the prefix is never
fetched, so a large overlay before the pixels costs nothing.  Sequences of
undefined length are walked item by item (items of defined length are
skipped whole); only wanted top-level tags are kept, and the walk stops at
Pixel Data (7FE0,0010).  Anything it does not understand raises
:class:`Malformed` (the caller then asks pydicom); a file that ends inside
the header raises :class:`Truncated`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import Any

from ..errors import CorruptPixelDataError, MissingPixelDataError, NotDicomError
from .syntaxes import DEFLATED, EXPLICIT_BE, IMPLICIT_LE

__all__ = ["LONG_VRS", "MAX_ELEMENTS", "MAX_SEQUENCE_ITEMS", "OPEN_FLAGS", "PIXEL_DATA", "PREFIX", "VRS",
           "Budget", "Buffer", "Malformed", "Truncated", "check_bounds", "check_item_tags", "dataset_start",
           "guess_encoding", "little_from_group", "pixel_location", "pread", "read_meta", "walk"]

#: Bytes read first; a header longer than this is extended as the walk needs it.
PREFIX = 16 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 500_000
"""Data elements (at every level the walk descends to) one file may hold before it is refused.

A chest radiograph has a few hundred; an enhanced multi-frame file with
per-frame functional groups some tens of thousands.  pydicom spends about
20 us per element, so a hostile file of millions of tiny elements would take
a minute to parse: refusing it after half a million costs the walk well
under a second."""
MAX_SEQUENCE_ITEMS = 100_000
"""Sequence items one file may hold before it is refused (same reason as :data:`MAX_ELEMENTS`).

An undefined-length sequence of 2,000,000 empty items costs pydicom 35-45 s
(closed or never closed); real files hold one item per frame and per
nested macro, thousands at most."""
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
VRS = LONG_VRS | frozenset(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
     b"ST", b"TM", b"UI", b"UL", b"US"}
)
_MAGIC = b"DICM"


def dataset_start(head: bytes | memoryview) -> int:
    """Where the file meta starts: 132 after the 128-byte preamble and the ``DICM`` magic (PS3.10 7.1), else 0
    (a bare data set).  The one test of the magic."""
    return 132 if len(head) >= 132 and bytes(head[128:132]) == _MAGIC else 0


_HDR = {
    (True, True): struct.Struct("<HHL"), (True, False): struct.Struct(">HHL"),
    (False, True): struct.Struct("<HH2sH"), (False, False): struct.Struct(">HH2sH"),
}
_U32 = {True: struct.Struct("<L"), False: struct.Struct(">L")}
_ITEM = {True: struct.Struct("<HHL"), False: struct.Struct(">HHL")}


#: Flags to open a file for the walk: binary, and never blocking on a FIFO that slipped into a list.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


def pread(fd: int, n: int, pos: int) -> bytes:
    """``n`` bytes at ``pos`` (fewer at the end of the file), without moving a shared offset where the OS can."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, pos)
    os.lseek(fd, pos, os.SEEK_SET)  # Windows: no pread
    return os.read(fd, n)


class Malformed(Exception):
    """The walk met something it does not understand (pydicom gets a try)."""


class Truncated(Exception):
    """The file ends inside the header."""


class Budget:
    """What a walk of one file may still meet: :data:`MAX_ELEMENTS` elements, :data:`MAX_SEQUENCE_ITEMS` items."""

    __slots__ = ("elements", "items")

    def __init__(self, elements: int = MAX_ELEMENTS, items: int = MAX_SEQUENCE_ITEMS) -> None:
        self.elements, self.items = elements, items


def _over(what: str, limit: int) -> NotDicomError:
    return NotDicomError(f"malformed DICOM header: more than {limit:,} {what} (a limit against hostile files, "
                         f"dicomxray.dicom.elements.MAX_{'ELEMENTS' if what == 'data elements' else 'SEQUENCE_ITEMS'})")


class Buffer:
    """A window on the file: the prefix first, refilled at the position the walk needs."""

    __slots__ = ("base", "data", "fd", "size")

    def __init__(self, fd: int | None, size: int, data: bytes, base: int = 0) -> None:
        self.fd, self.size, self.data, self.base = fd, size, data, base

    def read(self, pos: int, n: int) -> bytes:
        off = pos - self.base
        if 0 <= off and off + n <= len(self.data):
            return self.data[off : off + n]
        if pos + n > self.size:
            raise Truncated(pos)
        self.data, self.base = self._fetch(max(n, PREFIX), pos), pos
        if len(self.data) < n:
            raise Truncated(pos)
        return self.data[:n]

    def _fetch(self, n: int, pos: int) -> bytes:
        """``n`` bytes from ``pos`` of the file (a subclass reads them from elsewhere)."""
        if self.fd is None:
            raise Truncated(pos)
        return pread(self.fd, n, pos)


def walk(buf: Buffer, pos: int, implicit: bool, little: bool, found: dict[int, Any],
         wanted: Mapping[int, tuple[str, str]], depth: int = 0, budget: Budget | None = None) -> int:
    """Walk data elements from ``pos``; keep the top-level ones in ``wanted`` (tag -> (name, kind)) in ``found``.

    ``found[tag]`` is the raw value, or for a kind ``"seq"`` only
    whether the sequence has an item.  At depth 0 the walk stops at Pixel Data
    (``found[PIXEL_DATA] = (tag position, VR)``) or at the end of the file;
    inside an item of undefined length it returns the position after the
    item's delimiter.  More elements or items than ``budget`` allows (by
    default :data:`MAX_ELEMENTS`, :data:`MAX_SEQUENCE_ITEMS`) raise
    :class:`~dicomxray.errors.NotDicomError`, never :class:`Malformed`: no
    other parser should try such a file.
    """
    if depth > MAX_DEPTH:
        raise Malformed("sequences nested too deeply")
    if budget is None:
        budget = Budget()
    u32 = _U32[little].unpack_from
    unpack = _HDR[implicit, little].unpack_from
    size, data, base = buf.size, buf.data, buf.base
    dlen = len(data)
    long_vrs, vrs = LONG_VRS, VRS
    while pos < size:
        off = pos - base
        if off < 0 or off + 12 > dlen:
            if size - pos < 8:
                raise Truncated(pos)
            buf.read(pos, min(12, size - pos))
            data, base = buf.data, buf.base
            off, dlen = pos - base, len(data)
        if implicit:
            group, elem, length = unpack(data, off)
            vr = None
            start = pos + 8
        else:
            group, elem, vr, length = unpack(data, off)
            if group == 0xFFFE:  # item tags have no VR, even in explicit VR
                (length,) = u32(data, off + 4)
                vr, start = None, pos + 8
            elif vr in long_vrs:
                if off + 12 > dlen:
                    raise Truncated(pos)
                (length,) = u32(data, off + 8)
                start = pos + 12
            elif vr in vrs:
                start = pos + 8
            else:
                raise Malformed(f"unknown VR {vr!r} at byte {pos}")
        tag = group << 16 | elem
        budget.elements -= 1
        if budget.elements < 0:
            raise _over("data elements", MAX_ELEMENTS)
        if group == 0xFFFE:
            if tag == 0xFFFEE00D and depth > 0:
                return pos + 8
            raise Malformed(f"unexpected item tag ({group:04X},{elem:04X}) at byte {pos}")
        if depth == 0 and tag >= PIXEL_DATA:
            if tag == PIXEL_DATA:
                found[PIXEL_DATA] = (pos, vr)
            return pos
        if length == UNDEFINED:
            if depth == 0 and tag in wanted:
                found[tag] = buf.read(start, 4) != (b"\xfe\xff\xdd\xe0" if little else b"\xff\xfe\xe0\xdd")
            # SQ, or UN holding an implicit VR little endian sequence (PS3.5 6.2.2)
            pos = skip_sequence(buf, start, implicit or vr == b"UN", little if vr != b"UN" else True, found, wanted,
                                depth + 1, budget)
            data, base = buf.data, buf.base
            dlen = len(data)
            continue
        end = start + length
        if end > size:
            raise Truncated(pos)
        if depth == 0 and tag in wanted:
            if wanted[tag][1] == "seq":
                found[tag] = length > 0
            elif end - base <= dlen:
                found[tag] = data[start - base : end - base]
            else:
                found[tag] = buf.read(start, length)
                data, base = buf.data, buf.base
                dlen = len(data)
        pos = end
    if depth > 0:
        raise Truncated(pos)
    return pos


def skip_sequence(buf: Buffer, pos: int, implicit: bool, little: bool, found: dict[int, Any],
                  wanted: Mapping[int, tuple[str, str]], depth: int, budget: Budget) -> int:
    """Step over a sequence of undefined length; return the position after its delimiter."""
    item = _ITEM[little].unpack_from
    while True:
        group, elem, length = item(buf.read(pos, 8))
        if (group, elem) == (0xFFFE, 0xE0DD):
            return pos + 8
        if (group, elem) != (0xFFFE, 0xE000):
            raise Malformed(f"no item tag in a sequence at byte {pos}")
        budget.items -= 1
        if budget.items < 0:
            raise _over("sequence items", MAX_SEQUENCE_ITEMS)
        if length == UNDEFINED:
            pos = walk(buf, pos + 8, implicit, little, found, wanted, depth, budget)
        else:
            pos += 8 + length


def guess_encoding(head: bytes, implicit: bool, little: bool) -> tuple[bool, bool]:
    """Correct a declared (or assumed) encoding by the first element's bytes, as pydicom does."""
    if len(head) < 8:
        return implicit, little
    vr_like = head[4:6] in VRS
    if not implicit and not vr_like:
        return True, True  # said explicit, looks implicit (only little endian exists)
    if implicit and vr_like:
        return False, little_from_group(head)
    return implicit, little


def little_from_group(head: bytes) -> bool:
    """The byte order of a data set's first element: its group number is small (0x0002..0x00FF)."""
    return int.from_bytes(head[:2], "little") < 0x0100


def read_meta(buf: Buffer, pos: int) -> tuple[dict[int, Any], int]:
    """Group 0002 (always explicit VR little endian): its elements and where the data set starts."""
    meta: dict[int, Any] = {}
    while pos + 8 <= buf.size:
        head = buf.read(pos, 8)
        if head[:2] != b"\x02\x00":
            break
        group, elem, vr, length = _HDR[False, True].unpack_from(head)
        start = pos + 8
        if vr in LONG_VRS:
            (length,) = _U32[True].unpack_from(buf.read(pos + 8, 4))
            start = pos + 12
        elif vr not in VRS:
            raise Malformed("file meta information is not explicit VR little endian")
        meta[group << 16 | elem] = buf.read(start, length)
        pos = start + length
    return meta, pos


def pixel_location(buf: Buffer, found: dict[int, Any], implicit: bool, little: bool) -> tuple[int, int]:
    """(offset of the Pixel Data value, its length or -1 when undefined) or raise."""
    if PIXEL_DATA not in found:
        raise MissingPixelDataError("no Pixel Data (7FE0,0010) element")
    pos, vr = found[PIXEL_DATA]
    if implicit:
        (length,) = _U32[little].unpack_from(buf.read(pos + 4, 4))
        start = pos + 8
    elif vr in LONG_VRS:
        (length,) = _U32[little].unpack_from(buf.read(pos + 8, 4))
        start = pos + 12
    else:
        length = int.from_bytes(buf.read(pos + 6, 2), "little" if little else "big")
        start = pos + 8
    if length == UNDEFINED:
        if buf.read(start, 4) != (b"\xfe\xff\x00\xe0" if little else b"\xff\xfe\xe0\x00"):
            raise CorruptPixelDataError("encapsulated Pixel Data does not start with an item (FFFE,E000)")
        return start, -1
    if start + length > buf.size:
        raise CorruptPixelDataError(
            f"Pixel Data declares {length} bytes but the file ends {buf.size - start} bytes after its start (truncated)"
        )
    return start, length


_ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")


def check_bounds(data: bytes) -> None:
    """Refuse, before pydicom parses it, a data set over :data:`MAX_ELEMENTS` or :data:`MAX_SEQUENCE_ITEMS`.

    ``data`` is a whole file (preamble optional) or an inflated Deflated body.
    The walk counts the elements and the items of undefined-length sequences
    up to Pixel Data (a Deflated file is left to the caller, who checks its
    inflated body); item tags anywhere in that header (inside defined-length
    items too, or in the whole file when the walk cannot follow it) are
    counted by their bytes.  Microseconds on an ordinary header.

    Raises
    ------
    NotDicomError
        Over a limit (the message names the limit, not the file: the caller adds it).
    """
    end = len(data)
    buf = Buffer(None, end, data)
    try:
        meta, pos = read_meta(buf, dataset_start(data))
        syntax = bytes(meta.get(0x00020010, b"")).decode("latin-1").rstrip(" \x00") or None
        if syntax == DEFLATED:
            return
        first = data[pos : pos + 8]
        little = little_from_group(first) if syntax is None else syntax != EXPLICIT_BE
        implicit, little = guess_encoding(first, syntax == IMPLICIT_LE, little)
        end = walk(buf, pos, implicit, little, {}, {})
    except (Malformed, Truncated, struct.error, IndexError):
        end = len(data)  # the walk cannot follow it: count the item tags of the whole file
    check_item_tags(data[:end])


def check_item_tags(header: bytes) -> None:
    """Refuse a header (the bytes before Pixel Data) holding more item tags (FFFE,E000), in either byte
    order, than :data:`MAX_SEQUENCE_ITEMS`: the items inside defined-length sequences and items, which the
    walk steps over whole, count too.  C speed: a few ms for 16 MB."""
    if sum(header.count(tag) for tag in _ITEM_TAGS) > MAX_SEQUENCE_ITEMS:
        raise _over("sequence items", MAX_SEQUENCE_ITEMS)
