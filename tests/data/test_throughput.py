"""The warm path (issue 12) and the review's findings on it: uint8 transport, the RAM tier, private memory per
sample (nothing written into a sample reaches the cache or the tier), no descriptor kept per cache entry."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from dicomxray import CacheConfig, DicomXrayDataset, SourceReadError, XrayCache, pipeline_config
from dicomxray.testing import chest_phantom, write_dicom
from dicomxray.transforms import to_float


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for i in range(6):
        write_dicom(root / f"{i}.dcm", chest_phantom(90, 70, bits=12, seed=i), bits_stored=12)
    return root


def test_uint8_transport_is_the_float_batch_times_255(folder: Path, tmp_path: Path) -> None:
    f32 = next(iter(DataLoader(DicomXrayDataset(folder, size=48), batch_size=6)))["image"]
    ds = DicomXrayDataset(folder, size=48, cache=tmp_path / "c", image_dtype="uint8")
    for _ in range(2):  # cold, then from the cache
        u8 = next(iter(DataLoader(ds, batch_size=6)))["image"]
        assert u8.dtype == torch.uint8 and u8.shape == f32.shape
        assert torch.equal(to_float(u8), f32)
    assert torch.allclose(to_float(u8, mean=0.5, std=0.25), (f32 - 0.5) / 0.25)
    with pytest.raises(ValueError, match="uint8 render"):
        DicomXrayDataset(folder, config=pipeline_config(size=48, dtype="float32"), image_dtype="uint8")


def test_ram_tier_serves_without_the_files_and_pickles_small(folder: Path) -> None:
    ds = DicomXrayDataset(folder, size=48, in_memory=True).preload(progress=False)
    before = [ds[i]["image"].clone() for i in range(len(ds))]
    for f in folder.glob("*.dcm"):
        f.unlink()  # the tier does not look at the files again
    assert all(torch.equal(ds[i]["image"], before[i]) for i in range(len(ds)))
    assert len(pickle.dumps(ds)) < 20_000  # a spawned worker or a DDP rank gets no images
    with pytest.raises(ValueError, match="in_memory"):
        DicomXrayDataset(folder.parent, files=[], size=48).preload()


@pytest.mark.parametrize("kind", ["cache", "ram", "plain"])
def test_writing_into_a_sample_never_reaches_the_next_one(folder: Path, tmp_path: Path, kind: str) -> None:
    kw: dict = {"cache": tmp_path / "c"} if kind == "cache" else {"in_memory": True} if kind == "ram" else {}
    for dtype in ("uint8", "float32"):
        ds = DicomXrayDataset(folder, size=48, image_dtype=dtype, **kw)  # type: ignore[arg-type]
        ds[0], ds[0]  # filled (cache entry written and read back, or tier filled)
        reference = ds[0]["image"].clone()
        ds[0]["image"].zero_()  # an in-place op on what was handed out: no crash...
        assert torch.equal(ds[0]["image"], reference)  # ...and the next access is untouched


def test_a_warm_epoch_keeps_no_descriptor_per_cache_entry(tmp_path: Path) -> None:
    root = tmp_path / "many"
    base = write_dicom(tmp_path / "base.dcm", chest_phantom(40, 40, bits=12), bits_stored=12)
    for i in range(150):
        (root / f"{i:03d}.dcm").parent.mkdir(exist_ok=True)
        (root / f"{i:03d}.dcm").write_bytes(base.read_bytes())
    ds = DicomXrayDataset(root, size=16, cache=tmp_path / "c")
    for i in range(len(ds)):
        ds[i]
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(2):  # warm epochs: every read is a cache hit
        for i in range(len(ds)):
            ds[i]
    assert ds.cache is not None and ds.cache.stats.hits >= 300
    assert len(os.listdir("/proc/self/fd")) <= fds + 2


def test_content_identity_hit_names_the_file_asked_for(tmp_path: Path) -> None:
    a = write_dicom(tmp_path / "a.dcm", chest_phantom(40, 40, bits=12), bits_stored=12)
    b = tmp_path / "b.dcm"
    b.write_bytes(a.read_bytes())  # the same bytes under another name: one entry
    cache = XrayCache(CacheConfig(directory=str(tmp_path / "c"), identity="content"))
    assert cache.load(a, pipeline_config(size=16)).meta.path == str(a)
    hit = cache.load(b, pipeline_config(size=16))
    assert cache.stats.hits == 1 and hit.meta.path == str(b)


def test_an_unreadable_file_is_a_named_error_and_skippable(folder: Path) -> None:
    loop = folder / "loop.dcm"
    os.symlink(loop, loop)  # ELOOP on open: not "not found", not a directory
    with pytest.raises(SourceReadError, match="loop.dcm"):
        DicomXrayDataset(folder, files=[loop], size=16)[0]
    files = [folder / "0.dcm", loop, folder / "1.dcm"]
    ds = DicomXrayDataset(folder, files=files, size=16, on_error="skip")
    with pytest.warns(UserWarning, match="skipping"):
        batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape[0] == 3 and [p for p, _ in ds.skipped()] == [str(loop)]


def test_dicomdir_references_cannot_leave_its_folder(tmp_path: Path) -> None:
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.fileset import FileSet

    from dicomxray.index import discover

    media = tmp_path / "media"
    outside = tmp_path / "outside"
    tags = {"StudyDate": "20200101", "StudyTime": "101010", "StudyID": "1", "SeriesNumber": "1",
            "InstanceNumber": "1", "AccessionNumber": "A1"}
    write_dicom(outside / "IM1", chest_phantom(20, 20, bits=12), bits_stored=12, extra=tags)
    inside = write_dicom(tmp_path / "staging" / "IM2", chest_phantom(20, 20, bits=12), bits_stored=12, extra=tags)
    fs = FileSet()
    fs.add(dcmread(inside))
    fs.write(media)
    ds = dcmread(media / "DICOMDIR")
    records = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    evil = Dataset()
    evil.update(records[0])
    evil.ReferencedFileID = ["..", "outside", "IM1"]
    ds.DirectoryRecordSequence.append(evil)
    ds.save_as(media / "DICOMDIR")
    found = discover(media).files
    assert found and all(Path(f).resolve().is_relative_to(media.resolve()) for f in found)
