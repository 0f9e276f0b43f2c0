"""The index's salt file: written whole or not at all, one salt when several first builds race, and a 0-byte
salt left by a crash (older versions created the file empty, then wrote it) replaced or refused by name."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from dicomxray.errors import IndexSaltError
from dicomxray.index import build_index
from dicomxray.index.table import load_salt
from dicomxray.testing import write_dicom

PROCESSES, TRIALS = 4, 6


def _race(path: str, barrier: mp.synchronize.Barrier, results: mp.Queue) -> None:  # type: ignore[name-defined]
    barrier.wait()
    try:
        results.put(load_salt(Path(path)).hex())
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"error {type(exc).__name__}: {exc}")


def test_concurrent_first_builds_agree_on_one_salt(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for trial in range(TRIALS):
        path = tmp_path / f"t{trial}" / "index.parquet.salt"
        path.parent.mkdir()
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(path), barrier, results)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        got = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert not [g for g in got if g.startswith("error")], got
        assert len(set(got)) == 1, f"trial {trial}: {len(set(got))} different salts"
        assert bytes.fromhex(path.read_text().strip()).hex() == got[0]
        assert path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind


def test_salt_file_is_never_seen_partial(tmp_path: Path) -> None:
    """The salt appears at its name already complete: created under another name, then linked."""
    path = tmp_path / "index.parquet.salt"
    seen: list[int] = []
    real_link = os.link

    def spy(src: str, dst: str, *args: object, **kwargs: object) -> None:
        seen.append(Path(src).stat().st_size)
        real_link(src, dst)

    import dicomxray.index.table as table

    original = table.os.link
    table.os.link = spy  # type: ignore[assignment]
    try:
        salt = load_salt(path)
    finally:
        table.os.link = original  # type: ignore[assignment]
    assert seen and seen[0] == len(salt.hex()) + 1
    assert load_salt(path) == salt


def _one_file(root: Path) -> None:
    write_dicom(root / "a.dcm", np.zeros((8, 8), np.uint16), bits_stored=12)


def test_empty_leftover_salt_without_index_is_replaced(tmp_path: Path) -> None:
    _one_file(tmp_path / "archive")
    out = tmp_path / "index.csv"
    salt_file = tmp_path / "index.csv.salt"
    salt_file.write_bytes(b"")  # what a crash between create and write left behind
    report = build_index(tmp_path / "archive", out, workers=0, progress=False)
    assert report.rows == 1
    salt = bytes.fromhex(salt_file.read_text().strip())
    assert len(salt) == 32
    assert salt_file.stat().st_mode & 0o777 == 0o600
    build_index(tmp_path / "archive", out, workers=0, progress=False)  # and reused afterwards
    assert bytes.fromhex(salt_file.read_text().strip()) == salt


def test_empty_salt_beside_an_index_is_a_named_error(tmp_path: Path) -> None:
    _one_file(tmp_path / "archive")
    out = tmp_path / "index.csv"
    build_index(tmp_path / "archive", out, workers=0, progress=False)
    salt_file = tmp_path / "index.csv.salt"
    salt_file.write_bytes(b"")
    with pytest.raises(IndexSaltError, match=r"index\.csv\.salt.*empty") as err:
        build_index(tmp_path / "archive", out, workers=0, progress=False)
    assert str(out) in str(err.value)
    assert salt_file.read_bytes() == b""  # nothing was replaced under an index that used the lost salt
