"""Hostile inputs: mutations of valid DICOM files, for tests/test_hardening.py and benchmarks/stress.py.

Each mutation takes the bytes of a valid file and a ``random.Random`` and returns new bytes: truncation anywhere,
byte flips in the header or in the compressed stream, lies about Rows/Columns/BitsAllocated/BitsStored/
NumberOfFrames, wrong element lengths, and encapsulated items whose length runs past the end or never ends.
They assume explicit VR little endian data elements, as :func:`~dicomxray.testing.write_dicom` writes by default.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

__all__ = ["MUTATIONS", "mutate"]

Mutation = Callable[[bytes, random.Random], bytes]

TAGS = {  # (group, element) little endian, explicit VR US
    "Rows": (0x0028, 0x0010), "Columns": (0x0028, 0x0011), "BitsAllocated": (0x0028, 0x0100),
    "BitsStored": (0x0028, 0x0101), "HighBit": (0x0028, 0x0102), "PixelRepresentation": (0x0028, 0x0103),
    "SamplesPerPixel": (0x0028, 0x0002),
}


def _pixel_offset(data: bytes) -> int:
    i = data.rfind(b"\xe0\x7f\x10\x00")
    return i if i > 0 else len(data) // 2


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut the file anywhere."""
    return data[: rng.randrange(0, len(data))]


def flip_header(data: bytes, rng: random.Random) -> bytes:
    """Flip 1 to 8 bits before the Pixel Data element."""
    end = _pixel_offset(data)
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(0, max(1, end))] ^= 1 << rng.randrange(8)
    return bytes(out)


def flip_stream(data: bytes, rng: random.Random) -> bytes:
    """Overwrite 1 to 64 bytes of the Pixel Data (the compressed stream, when encapsulated)."""
    start = _pixel_offset(data)
    out = bytearray(data)
    for _ in range(rng.randint(1, 64)):
        out[rng.randrange(start, len(out))] = rng.randrange(256)
    return bytes(out)


def lie_about_tag(data: bytes, rng: random.Random) -> bytes:
    """Give one of the image pixel module's US values (Rows, Columns, Bits...) an unlikely value."""
    name = rng.choice(sorted(TAGS))
    group, elem = TAGS[name]
    tag = struct.pack("<HH", group, elem) + b"US" + struct.pack("<H", 2)
    i = data.find(tag)
    if i < 0:
        return truncate(data, rng)
    value = rng.choice([0, 1, 7, 8, 12, 15, 16, 17, 32, 255, 4096, 65535, rng.randrange(65536)])
    return data[: i + 8] + struct.pack("<H", value) + data[i + 10 :]


def lie_about_frames(data: bytes, rng: random.Random) -> bytes:
    """Insert a Number of Frames that disagrees with the Pixel Data."""
    value = str(rng.choice([0, 2, 3, 1000, 99999999, -1])).encode()
    value += b" " * (len(value) % 2)
    elem = struct.pack("<HH", 0x0028, 0x0008) + b"IS" + struct.pack("<H", len(value)) + value
    i = data.find(struct.pack("<HH", 0x0028, 0x0010))  # insert before Rows (keeps tag order)
    return data if i < 0 else data[:i] + elem + data[i:]


def wrong_lengths(data: bytes, rng: random.Random) -> bytes:
    """Corrupt the length of the Pixel Data element or of one of its items."""
    start = _pixel_offset(data)
    out = bytearray(data)
    candidates = [start + 8] if start + 12 <= len(out) else []
    j = data.find(b"\xfe\xff\x00\xe0", start)
    while j >= 0 and len(candidates) < 6:
        candidates.append(j + 4)
        j = data.find(b"\xfe\xff\x00\xe0", j + 4)
    if not candidates:
        return truncate(data, rng)
    pos = rng.choice(candidates)
    out[pos : pos + 4] = struct.pack("<I", rng.choice([0, 1, 3, 0xFFFFFFFE, 0xFFFFFFFF, rng.randrange(1 << 32)]))
    return bytes(out)


def endless_items(data: bytes, rng: random.Random) -> bytes:
    """Drop the sequence delimiter so undefined-length Pixel Data never ends."""
    i = data.rfind(b"\xfe\xff\xdd\xe0")
    return data[:i] if i > 0 else truncate(data, rng)


#: Every mutation by name.
MUTATIONS: dict[str, Mutation] = {
    "truncate": truncate, "flip_header": flip_header, "flip_stream": flip_stream, "lie_about_tag": lie_about_tag,
    "lie_about_frames": lie_about_frames, "wrong_lengths": wrong_lengths, "endless_items": endless_items,
}


def mutate(data: bytes, seed: int, names: Sequence[str] | None = None) -> tuple[str, bytes]:
    """Apply one mutation, chosen by ``seed``, to the bytes of a valid file.

    Parameters
    ----------
    data : bytes
        A valid DICOM file.
    seed : int
        Chooses the mutation and drives it: the same seed gives the same bytes.
    names : sequence of str, optional
        The mutations to choose from (keys of :data:`MUTATIONS`); default all.

    Returns
    -------
    (str, bytes)
        The mutation's name and the mutated bytes.
    """
    rng = random.Random(seed)
    name = rng.choice(sorted(names or MUTATIONS))
    return name, MUTATIONS[name](data, rng)
