from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from dicomxray import CacheError, DecodeConfig, PipelineConfig, RenderConfig, XrayCache, pipeline_config, read_xray
from dicomxray.testing import chest_phantom


@pytest.fixture
def src(write):
    return write(chest_phantom(200, 240, bits=12, seed=3), bits_stored=12, window=(2000, 3000))


def test_hit_returns_the_same_pixels(tmp_path, src):
    cache = XrayCache(tmp_path / "c")
    cfg = pipeline_config(size=64)
    first = cache.load(src, cfg)
    second = cache.load(src, cfg)
    assert cache.stats.misses == 1 and cache.stats.hits == 1 and cache.stats.writes == 1
    assert np.array_equal(first.pixels, second.pixels)
    assert np.array_equal(second.pixels, read_xray(src, 64))
    assert second.meta == first.meta


def test_editing_the_source_is_never_served_stale(tmp_path, src, write):
    cache = XrayCache(tmp_path / "c")
    cfg = pipeline_config(size=64)
    before = cache.load(src, cfg).pixels.copy()
    # rewrite the same path with different pixels (and force a distinct mtime)
    write(chest_phantom(200, 240, bits=12, seed=99), name=src.name, bits_stored=12, window=(2000, 3000))
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after = cache.load(src, cfg).pixels
    assert not np.array_equal(before, after)
    assert np.array_equal(after, read_xray(src, 64))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(dict(size=65), id="size"),
        pytest.param(dict(dtype="uint16"), id="dtype"),
        pytest.param(dict(normalize="window"), id="normalize"),
        pytest.param(dict(keep_ratio=True), id="keep_ratio"),
        pytest.param(dict(config=PipelineConfig(render=RenderConfig(voi=False))), id="voi"),
        pytest.param(dict(config=PipelineConfig(decode=DecodeConfig(reduced_resolution=True),
                                                render=RenderConfig(normalize="window"))), id="decode"),
    ],
)
def test_changing_any_option_changes_the_key(tmp_path, src, change):
    cache = XrayCache(tmp_path / "c")
    base = pipeline_config(size=64)
    kwargs = {"size": 64, **change}
    other = pipeline_config(size=kwargs.pop("size"), **kwargs)
    assert cache.key(src, base) != cache.key(src, other)
    cache.load(src, base)
    got = cache.load(src, other).pixels
    assert np.array_equal(got, read_xray(src, config=other))


def test_pipeline_code_is_in_the_key(tmp_path, src, monkeypatch):
    import dicomxray.cache as cache_module

    cache = XrayCache(tmp_path / "c")
    k1 = cache.key(src, pipeline_config(size=64))
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: "another pipeline")
    assert XrayCache(tmp_path / "c").key(src, pipeline_config(size=64)) != k1  # a new process: a new code


def test_editing_the_rendering_code_changes_the_code_fingerprint(tmp_path):
    import shutil
    import subprocess
    import sys

    import dicomxray

    pkg = Path(dicomxray.__file__).parent
    shutil.copytree(pkg, tmp_path / "dicomxray", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from dicomxray.cache import code_fingerprint; print(code_fingerprint())"

    def fingerprint() -> str:
        env = {**os.environ, "PYTHONPATH": str(tmp_path)}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                              cwd=tmp_path).stdout.strip()

    def edit(rel: str) -> None:
        path = tmp_path / "dicomxray" / rel
        path.write_text(path.read_text() + "\n# an edit in an editable install\n")

    before = fingerprint()
    # Code that never shapes a pixel keeps every entry (the dataset, the jobs, the index, the I/O layer).
    for rel in ("data/dataset.py", "jobs/tasks.py", "index/build.py", "io/source.py", "dicom/discover.py"):
        edit(rel)
        assert fingerprint() == before, rel
    # Code that does changes every key.
    for rel in ("pixels/render.py", "pixels/fingerprint.py", "dicom/display.py", "pixels/decode/imagecodecs_backend.py",
                "config.py"):
        edit(rel)
        after = fingerprint()
        assert after != before, rel
        before = after


def test_content_identity_survives_touch(tmp_path, src):
    cache = XrayCache(tmp_path / "c", identity="content")
    k1 = cache.key(src, pipeline_config(size=64))
    os.utime(src, ns=(1, 1))
    assert cache.key(src, pipeline_config(size=64)) == k1
    other = XrayCache(tmp_path / "d")
    assert other.key(src, pipeline_config(size=64)) != other.key(src, pipeline_config(size=65))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_pixel", "empty"])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path, src, damage):
    cache = XrayCache(tmp_path / "c", check_crc=True)
    cfg = pipeline_config(size=64)
    good = cache.load(src, cfg).pixels.copy()
    entry = cache.entry_path(cache.key(src, cfg))
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "garbage":
        data[:16] = b"x" * 16
    elif damage == "flip_pixel":
        data[-10] ^= 0xFF
    else:
        data = bytearray()
    entry.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt entry"):
        again = cache.load(src, cfg).pixels
    assert np.array_equal(again, good)
    assert cache.stats.corrupt == 1
    assert cache.verify() == {"ok": 1, "corrupt": 0}  # rewritten


def test_verify_finds_bit_rot_without_read_checks(tmp_path, src):
    cache = XrayCache(tmp_path / "c")
    cfg = pipeline_config(size=64)
    cache.load(src, cfg)
    entry = cache.entry_path(cache.key(src, cfg))
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0x01
    entry.write_bytes(bytes(data))
    assert cache.verify() == {"ok": 0, "corrupt": 1}
    assert not entry.exists()


def test_prune_removes_entries_of_changed_sources(tmp_path, src):
    cache = XrayCache(tmp_path / "c")
    cache.load(src, pipeline_config(size=64))
    assert cache.prune() == {"kept": 1, "removed": 0, "temp_removed": 0}
    os.utime(src, ns=(5, 5))
    assert cache.prune()["removed"] == 1
    assert list(cache.entries()) == []


def test_read_only_directory_warns_once_and_goes_on(tmp_path, src, monkeypatch):
    cache = XrayCache(tmp_path / "c")

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", no_space)
    with pytest.warns(UserWarning, match="caching is off"):
        img = cache.load(src, pipeline_config(size=64))
    assert np.array_equal(img.pixels, read_xray(src, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.load(src, pipeline_config(size=32))  # no second warning
    assert list(cache.entries()) == []


def test_strict_mode_raises(tmp_path, src, monkeypatch):
    cache = XrayCache(tmp_path / "c", strict=True)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", no_space)
    with pytest.raises(CacheError, match="cannot write"):
        cache.load(src, pipeline_config(size=64))


def test_failed_write_leaves_no_partial_entry(tmp_path, src, monkeypatch):
    cache = XrayCache(tmp_path / "c")
    real_replace = os.replace

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.warns(UserWarning):
        cache.load(src, pipeline_config(size=64))
    monkeypatch.setattr(os, "replace", real_replace)
    leftovers = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    assert leftovers == []


def test_cache_pickles_small(tmp_path, src):
    cache = XrayCache(tmp_path / "c")
    cache.load(src, pipeline_config(size=64))
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.directory == cache.directory and clone.stats.hits == 0
    assert len(pickle.dumps(cache)) < 500


def test_unusable_cache_directory_warns_and_training_goes_on(tmp_path, src):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    cache = XrayCache(blocker / "cache")
    with pytest.warns(UserWarning, match="caching is off"):
        img = cache.load(src, pipeline_config(size=64))
    assert np.array_equal(img.pixels, read_xray(src, 64))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_build_onto_a_full_disk_warns_once_with_the_count(tmp_path, write, monkeypatch, workers):
    from dicomxray.errors import CacheWarning
    from dicomxray.jobs import build_cache
    from dicomxray.pixels.pipeline import Pipeline

    files = [str(write(chest_phantom(64, 64, bits=12, seed=i), bits_stored=12)) for i in range(6)]
    decodes = []
    real_read = Pipeline.read

    def counted(self, *args, **kwargs):
        decodes.append(1)
        return real_read(self, *args, **kwargs)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Pipeline, "read", counted)
    monkeypatch.setattr("tempfile.mkstemp", no_space)  # forked pool processes inherit it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = build_cache(files, tmp_path / "c", config=pipeline_config(size=32), workers=workers, progress=False)
    ours = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    message = str(ours[0].message)
    assert str(tmp_path / "c") in message and "6 of 6 entries not written" in message and "No space" in message
    assert "training continues" not in message
    assert [r.status for r in results] == ["unwritten"] * 6
    if workers == 0:
        assert len(decodes) == 1  # the first refused write stops the decoding too
    assert list(XrayCache(tmp_path / "c").entries()) == []


def test_one_reader_of_the_entry_format(tmp_path, src):
    """A hit, verify and prune read an entry through one parser: a damaged header is refused by all three."""
    import inspect

    import dicomxray.cache as cache_module

    cache = XrayCache(tmp_path / "c")
    cache.load(src, pipeline_config(size=32))
    (entry,) = cache.entries()
    blob = entry.read_bytes()
    entry.write_bytes(blob[:4] + (len(blob)).to_bytes(4, "little") + blob[8:])  # a header length past the end
    assert cache.verify(remove=False) == {"ok": 0, "corrupt": 1}
    assert cache.prune()["removed"] == 1
    source = inspect.getsource(cache_module)
    assert source.count("struct.unpack(") == 1 and source.count("_MAGIC") == 3  # defined, written, read once


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), ValueError("a value no writer takes")])
def test_a_cache_build_treats_a_file_as_export_does(tmp_path, write, monkeypatch, error):
    """One policy for what a job's file may raise: a failed result naming it, the other files still cached."""
    from dicomxray.jobs import build_cache, export_folder
    from dicomxray.pixels.pipeline import Pipeline

    files = [str(write(chest_phantom(64, 64, bits=12, seed=i), name=f"f{i}.dcm", bits_stored=12)) for i in range(2)]
    real_read = Pipeline.read

    def flaky(self, where, *args, **kwargs):
        if str(getattr(where, "path", where)).endswith("f0.dcm"):
            raise error
        return real_read(self, where, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "read", flaky)
    cached = build_cache(files, tmp_path / "c", config=pipeline_config(size=32), workers=0, progress=False)
    exported = export_folder(tmp_path, tmp_path / "png", config=pipeline_config(size=32), workers=0, progress=False)
    assert [r.status for r in cached] == [r.status for r in exported] == ["failed", "written"]
    assert str(error) in cached[0].error
