"""Hostile inputs: mutations of valid DICOM files, shared by tests/test_hardening.py and benchmarks/stress.py.

Each mutation takes the bytes of a valid file and a ``random.Random`` and returns new bytes: truncation anywhere,
byte flips in the header or in the compressed stream, lies about Rows/Columns/BitsAllocated/BitsStored/
NumberOfFrames, wrong element lengths, and encapsulated items whose length runs past the end or never ends.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

TAGS = {  # (group, element) little endian, explicit VR US
    "Rows": (0x0028, 0x0010), "Columns": (0x0028, 0x0011), "BitsAllocated": (0x0028, 0x0100),
    "BitsStored": (0x0028, 0x0101), "HighBit": (0x0028, 0x0102), "PixelRepresentation": (0x0028, 0x0103),
    "SamplesPerPixel": (0x0028, 0x0002),
}


def _pixel_offset(data: bytes) -> int:
    i = data.rfind(b"\xe0\x7f\x10\x00")
    return i if i > 0 else len(data) // 2


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def flip_header(data: bytes, rng: random.Random) -> bytes:
    end = _pixel_offset(data)
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(0, max(1, end))] ^= 1 << rng.randrange(8)
    return bytes(out)


def flip_stream(data: bytes, rng: random.Random) -> bytes:
    start = _pixel_offset(data)
    out = bytearray(data)
    for _ in range(rng.randint(1, 64)):
        out[rng.randrange(start, len(out))] = rng.randrange(256)
    return bytes(out)


def lie_about_tag(data: bytes, rng: random.Random) -> bytes:
    name = rng.choice(sorted(TAGS))
    group, elem = TAGS[name]
    tag = struct.pack("<HH", group, elem) + b"US" + struct.pack("<H", 2)
    i = data.find(tag)
    if i < 0:
        return truncate(data, rng)
    value = rng.choice([0, 1, 7, 8, 12, 15, 16, 17, 32, 255, 4096, 65535, rng.randrange(65536)])
    return data[: i + 8] + struct.pack("<H", value) + data[i + 10 :]


def lie_about_frames(data: bytes, rng: random.Random) -> bytes:
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


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate, "flip_header": flip_header, "flip_stream": flip_stream, "lie_about_tag": lie_about_tag,
    "lie_about_frames": lie_about_frames, "wrong_lengths": wrong_lengths, "endless_items": endless_items,
}


def mutate(data: bytes, seed: int) -> tuple[str, bytes]:
    rng = random.Random(seed)
    name = rng.choice(sorted(MUTATIONS))
    return name, MUTATIONS[name](data, rng)


def kill_randomly(cmds: list[list[str]], rng: random.Random, delay: tuple[float, float] = (0.1, 0.6)) -> int:
    """Start each command and SIGKILL it after a random delay (unless it finished first); return kills."""
    import signal
    import subprocess
    import time

    killed = 0
    for cmd in cmds:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(*delay))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    return killed


def read_and_check(args: tuple[str, str, int]) -> int:
    """One of several concurrent processes: fill/read a shared cache twice over; count wrong or corrupt reads."""
    import os

    import numpy as np

    from dicomxray import XrayCache, make_config, read_xray

    src, cache_dir, seed = args
    files = sorted(os.path.join(src, f) for f in os.listdir(src))
    random.Random(seed).shuffle(files)
    cache = XrayCache(cache_dir, check_crc=True)
    cfg = make_config(48)
    bad = 0
    for f in files * 2:
        bad += not np.array_equal(cache.load(f, cfg).pixels, read_xray(f, 48))
    return bad + cache.stats.corrupt
