"""One local/URL decision: the opener (dicomxray.io.source.locate) classifies a source once and every read
carries the result; outside io/, only the places where a user-given root or list is first classified ask."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dicomxray
from dicomxray import XrayCache, pipeline_config
from dicomxray.io import identity
from dicomxray.io.source import Location, Opener, locate
from dicomxray.pixels.pipeline import Pipeline
from dicomxray.testing import chest_phantom, write_dicom

SRC = Path(dicomxray.__file__).parent

#: Files outside io/ that classify a user-given root or file list, and how many times they may ask.
ENTRY_POINTS = {
    "cli/preview.py": 1,  # the command line's root where it is not a list of files
    "dicom/sources.py": 1,  # find_sources(root): the dataset, export and cache build list a root through it
    "dicom/discover.py": 1, "dicom/discover_url.py": 2,  # discover(root) and build_index(source)
    "jobs/tasks.py": 1,  # build_cache(files)
    "index/__init__.py": 4, "index/verify.py": 1,  # an index's path and its recorded root
    "index/scan_url.py": 1,  # a worker's chunk of an index's files (local or URL, by its first)
    "data/steps.py": 4,  # DicomXrayDataset(root, files=...)
}


class _Counter:
    """``identity._SCHEME`` with its ``match`` calls counted: every classification anywhere goes through it."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern, self.calls = pattern, 0

    def match(self, text: str) -> re.Match[str] | None:
        self.calls += 1
        return self.pattern.match(text)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Counter:
    counter = _Counter(identity._SCHEME)
    monkeypatch.setattr(identity, "_SCHEME", counter)
    return counter


def test_a_sample_is_classified_once_per_read(tmp_path: Path, counted: _Counter) -> None:
    path = str(write_dicom(tmp_path / "a.dcm", chest_phantom(48, 40, bits=12, seed=1), bits_stored=12))
    config = pipeline_config(size=16)
    Pipeline(config).read(path)
    assert counted.calls == 1  # the header no longer asks again, nor does the read under it
    cache = XrayCache(tmp_path / "cache")
    for _ in range(2):  # a miss (identity, read, store), then a hit
        counted.calls = 0
        cache.load(path, Pipeline(config))
        assert counted.calls == 1
    assert cache.stats.writes == 1 and cache.stats.hits == 1


def test_a_location_is_never_classified_again(tmp_path: Path, counted: _Counter) -> None:
    path = write_dicom(tmp_path / "a.dcm", chest_phantom(48, 40, bits=12, seed=1), bits_stored=12)
    where = Opener().locate(f"file://{path}")
    assert where == Location(str(path), False) and locate(where) is where
    assert locate("s3://bucket/key.dcm") == Location("s3://bucket/key.dcm", True)
    counted.calls = 0
    Pipeline(pipeline_config(size=16)).read(where)
    Opener().identity(where)
    assert counted.calls == 0


def test_only_entry_points_classify_outside_io() -> None:
    found: dict[str, int] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("io/"):
            continue
        n = len(re.findall(r"\bis_url\(", path.read_text(encoding="utf-8")))
        if n:
            found[rel] = n
    over = {f: n for f, n in found.items() if n > ENTRY_POINTS.get(f, 0)}
    assert not over, f"classify through dicomxray.io.source.locate / Opener.locate, or carry a Location: {over}"
    assert sum(found.values()) <= 17  # 26 calls in 14 files before the opener became the one decision
