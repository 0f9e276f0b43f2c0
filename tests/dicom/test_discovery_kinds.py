"""Every directory entry that is not a regular DICOM file is counted in ``skipped``, by kind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dicomxray.dicom.discover import discover, find_dicoms
from dicomxray.errors import SourceFileNotFoundError
from dicomxray.testing import chest_phantom, write_dicom


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_every_entry_is_counted_by_kind(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_dicom(root / "ok.dcm", chest_phantom(16, 16, bits=12), bits_stored=12)
    (root / "notes.txt").write_text("not an image")
    os.mkfifo(root / "pipe")
    os.mkfifo(root / "pipe.dcm")  # a FIFO is never taken for its name
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    os.symlink(root / "gone", root / "dangling")
    os.symlink(root / "loop", root / "loop")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "linked")
    (root / ".hidden").write_text("ignored")
    try:
        found = discover(root)
    finally:
        sock.close()
    assert [p.name for p in found.files] == ["ok.dcm"]
    assert dict(found.skipped_kinds) == {"not DICOM": 1, "FIFO": 2, "socket": 1, "dangling symlink": 1,
                                         "looping symlink": 1, "symlinked folder": 1}, found.skipped_kinds
    assert found.skipped == 7


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_counted(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    write_dicom(tmp_path / "ok.dcm", chest_phantom(16, 16, bits=12), bits_stored=12)
    locked.chmod(0)
    try:
        assert discover(tmp_path).skipped_kinds == {"unreadable folder": 1}
    finally:
        locked.chmod(0o755)


def test_find_dicoms_names_the_kinds(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(SourceFileNotFoundError, match=r"2 non-DICOM files skipped \(1 not DICOM, 1 dangling symlink\)"):
        find_dicoms(tmp_path)
