"""The header index: reading headers vs pydicom, and how long a selection over 1,000,000 rows takes.

* per file, one process, files in the page cache: ``pydicom.dcmread(path, stop_before_pixels=True)``,
  the same plus reading the tags an index row holds, and dicomxray's header reader (the one
  ``build_index`` runs in each worker); passes interleaved, medians over rounds;
* ``build_index`` end to end (discovery, reading, Parquet) in one process and with a pool of every CPU
  (forced with ``workers=``; by default a job this small stays in one process);
* a synthetic index of ``--rows`` rows: ``read_index`` and ``select`` with a query string (what
  ``DicomXrayDataset.from_index`` needs before its first sample), and a callable on 100,000 rows.

Run: ``python -m benchmarks.bench_index [--n 300] [--rounds 7] [--rows 1000000] [--out DIR]``.
Prints the figures as JSON, then as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from dicomxray.index import build_index, read_index, select
from dicomxray.index.scan import scan_file

#: What a DX/CR header usually carries besides the pixel module (about 100 elements with the rest).
_TAGS: dict[str, Any] = dict(
    SpecificCharacterSet="ISO_IR 100", ImageType=["ORIGINAL", "PRIMARY"], InstanceCreationDate="20200101",
    InstanceCreationTime="101010", StudyDate="20200101", SeriesDate="20200101", AcquisitionDate="20200101",
    ContentDate="20200101", StudyTime="101010", SeriesTime="101010", AcquisitionTime="101010", ContentTime="101010",
    AccessionNumber="A1234567", Manufacturer="ACME Medical", InstitutionName="General Hospital",
    InstitutionAddress="1 Main Street", ReferringPhysicianName="Doe^John", StationName="DR-ROOM-2",
    StudyDescription="CHEST PA AND LATERAL", SeriesDescription="PA", InstitutionalDepartmentName="Radiology",
    OperatorsName="Tech^A", ManufacturerModelName="DX 9000", PatientBirthDate="19700101", PatientSex="F",
    PatientAge="050Y", PatientSize="1.70", PatientWeight="65", BodyPartExamined="CHEST", KVP="120",
    DeviceSerialNumber="SN123456", SoftwareVersions="4.2.1", ProtocolName="CHEST PA", DistanceSourceToDetector="1800",
    DistanceSourceToPatient="1650", ExposureTime="12", XRayTubeCurrent="250", Exposure="3", ExposureInuAs="3000",
    ImagerPixelSpacing=[0.139, 0.139], Grid="IN", FocalSpots="1.2", FilterType="NONE", ViewPosition="PA",
    DetectorType="SCINTILLATOR", DetectorID="D1", DetectorManufacturerName="ACME", StudyID="1", SeriesNumber="1",
    AcquisitionNumber="1", InstanceNumber="1", PatientOrientation=["L", "F"], ImageLaterality="U",
    PixelSpacing=[0.139, 0.139], WindowCenter="2048", WindowWidth="4096", RescaleIntercept="0", RescaleSlope="1",
    RescaleType="US", LossyImageCompression="00", PresentationLUTShape="IDENTITY", BurnedInAnnotation="NO",
    PerformedProcedureStepStartDate="20200101", PerformedProcedureStepStartTime="101010",
    PerformedProcedureStepID="PPS1", PerformedProcedureStepDescription="CHEST PA", PixelIntensityRelationship="LOG",
    PixelIntensityRelationshipSign=1, ImageComments="synthetic",
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", meaning
    return item


def make_files(folder: Path, n: int) -> list[Path]:
    """``n`` small radiographs whose headers look like a modality's: ~100 elements, sequences of undefined
    length, a private block (written with pydicom alone, so the benchmark measures reading, nothing else)."""
    pixels = np.random.default_rng(0).integers(0, 4096, (64, 64), dtype=np.uint16)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = uid.DigitalXRayImageStorageForPresentation
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
        ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
        ds.StudyInstanceUID, ds.SeriesInstanceUID = uid.generate_uid(), uid.generate_uid()
        ds.PatientID, ds.PatientName, ds.Modality = f"P{i % 50:04d}", "Synthetic^Patient", "DX"
        for keyword, value in dict(_TAGS, InstanceNumber=str(i + 1)).items():
            setattr(ds, keyword, value)
        ds.AnatomicRegionSequence = Sequence([_code("51185008", "Chest")])
        ds.ProcedureCodeSequence = Sequence([_code("399208008", "Plain chest X-ray")])
        ds.ViewCodeSequence = Sequence([_code("399348003", "postero-anterior")])
        for keyword in ("AnatomicRegionSequence", "ProcedureCodeSequence", "ViewCodeSequence"):
            ds[keyword].is_undefined_length = True  # as many modalities write them
        block = ds.private_block(0x0019, "ACME DX 1.0", create=True)
        for k in range(12):
            block.add_new(0x10 + k, "LO", f"private value {k}")
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pixels.tobytes()
        path = folder / f"IM{i:06d}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _pass(fn: Callable[[str], object], files: list[str]) -> float:
    t0 = time.perf_counter()
    for f in files:
        fn(f)
    return (time.perf_counter() - t0) / len(files) * 1e6


def _dcmread_tags(path: str) -> object:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return [ds.get(k) for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "ViewPosition",
                                "BodyPartExamined", "Rows", "Columns", "BitsStored", "PhotometricInterpretation",
                                "PatientID", "WindowCenter")]


def time_readers(files: list[Path], rounds: int) -> dict[str, float]:
    """Median microseconds per file of each reader, passes interleaved (order rotated each round)."""
    names = [str(f) for f in files]
    key = b"k" * 32
    readers: dict[str, Callable[[str], object]] = {
        "pydicom dcmread(stop_before_pixels)": lambda p: pydicom.dcmread(p, stop_before_pixels=True),
        "pydicom dcmread + the row's tags": _dcmread_tags,
        "dicomxray header reader (a full row)": lambda p: scan_file(p, key=key),
    }
    for fn in readers.values():
        _pass(fn, names)  # warm-up: page cache, imports
    runs: dict[str, list[float]] = {k: [] for k in readers}
    order = list(readers)
    for r in range(rounds):
        for name in order[r % len(order):] + order[: r % len(order)]:
            runs[name].append(_pass(readers[name], names))
    return {k: statistics.median(v) for k, v in runs.items()}


def time_build(folder: Path, out: Path, workers: int, rounds: int) -> float:
    """Median microseconds per file of a full ``build_index`` (rebuild: every file read)."""
    times = []
    n = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        report = build_index(folder, out, workers=workers, progress=False, rebuild=True)
        times.append(time.perf_counter() - t0)
        n = report.rows
    return statistics.median(times) / n * 1e6


def synthetic_index(path: Path, rows: int) -> None:
    """An index file of ``rows`` rows with plausible values, written like ``build_index`` writes one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dicomxray.index.table import SCHEMA_VERSION, _arrow_schema, columns_for

    rng = np.random.default_rng(0)
    meta = {"format": "dicomxray-index", "schema": SCHEMA_VERSION, "root": str(path.parent / "archive"),
            "include_patient": False, "salt_id": "0" * 16}
    schema = _arrow_schema(columns_for(False), meta)
    ids = np.arange(rows)
    uids = pa.array([f"1.2.826.0.1.3680043.8.498.{i}" for i in ids])
    errors = rng.random(rows) < 0.001

    def pick(values: list[Any], p: list[float] | None = None) -> Any:
        return pa.array(np.array(values, dtype=object)[rng.choice(len(values), rows, p=p)].tolist())

    data: dict[str, Any] = {
        "path": pa.array([f"study{i // 4:07d}/IM{i:08d}" for i in ids]),
        "size": pa.array(rng.integers(5_000_000, 20_000_000, rows)), "mtime_ns": pa.array(ids * 1000),
        "inode": pa.array(ids.astype(np.uint64)), "ctime_ns": pa.array(ids * 1000),
        "SOPInstanceUID": uids, "SOPClassUID": pick(["1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1"]),
        "StudyInstanceUID": uids, "SeriesInstanceUID": uids, "Modality": pick(["DX", "CR"]),
        "ViewPosition": pick(["PA", "AP", "LL", "RL", None], [0.5, 0.3, 0.1, 0.05, 0.05]),
        "BodyPartExamined": pick(["CHEST", "ABDOMEN", None], [0.9, 0.05, 0.05]),
        "Rows": pa.array(rng.choice([2048, 2500, 3000], rows).astype(np.int32)),
        "Columns": pa.array(rng.choice([2048, 2500, 3000], rows).astype(np.int32)),
        "BitsStored": pa.array(rng.choice([10, 12, 14, 16], rows).astype(np.int32)),
        "PhotometricInterpretation": pick(["MONOCHROME2", "MONOCHROME1"], [0.8, 0.2]),
        "TransferSyntaxUID": pick(["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90"]),
        "decodable": pa.array(~errors & (rng.random(rows) < 0.99)), "has_window": pa.array(rng.random(rows) < 0.9),
        "has_voi_lut": pa.array(rng.random(rows) < 0.1), "pixel_data_offset": pa.array(rng.integers(1000, 5000, rows)),
        "pixel_data_length": pa.array(rng.integers(-1, 10_000_000, rows)),
        "patient_hash": pa.array([f"{i % 300_000:064x}" for i in ids]),
        "error_type": pa.array(np.where(errors, "NotDicomError", None).tolist(), pa.string()),
    }
    arrays = [data[name].cast(field.type) if name in data else pa.nulls(rows, field.type)
              for name, field in zip(schema.names, schema, strict=True)]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="zstd")


def _median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def time_select(folder: Path, rows: int) -> dict[str, Any]:
    path = folder / "big.parquet"
    synthetic_index(path, rows)
    query = "ViewPosition in ['PA', 'AP'] and decodable and Rows >= 2048"
    read_s, df = _median_time(lambda: read_index(path), 3)
    select_s, picked = _median_time(lambda: select(df, query), 5)
    small = df.iloc[:100_000]
    small.attrs = df.attrs
    call_s, _ = _median_time(lambda: select(small, lambda r: r["ViewPosition"] in ("PA", "AP") and r["decodable"]), 1)
    needed = ["ViewPosition", "decodable", "Rows"]
    read_few_s, few = _median_time(lambda: read_index(path, columns=needed), 3)
    select_few_s, _ = _median_time(lambda: select(few, query), 5)
    return {"rows": rows, "query": query, "matched": len(picked), "read_index_s": read_s, "select_query_s": select_s,
            "from_index_start_s": read_s + select_s, "read_index_columns_s": read_few_s,
            "select_query_columns_s": select_few_s, "from_index_start_columns_s": read_few_s + select_few_s,
            "select_callable_100k_s": call_s, "file_mb": path.stat().st_size / 1e6}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, pydicom {pydicom.__version__}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="synthetic files to index")
    ap.add_argument("--rounds", type=int, default=7, help="timed passes per reader (median)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic index for select()")
    ap.add_argument("--out", type=Path, default=None, help="also write index.json and index.md here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="bench_index_") as tmp:
        folder = Path(tmp) / "archive"
        files = make_files(folder, args.n)
        header_bytes = statistics.median(int(scan_file(str(f), key=b"k" * 32)["pixel_data_offset"]) for f in files)
        per_file = time_readers(files, args.rounds)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        build_1 = time_build(folder, Path(tmp) / "index.parquet", 0, max(3, args.rounds // 2))
        build_n = time_build(folder, Path(tmp) / "index.parquet", cpus, max(3, args.rounds // 2))
        selection = time_select(Path(tmp), args.rows)
    base = per_file["pydicom dcmread(stop_before_pixels)"]
    ours = per_file["dicomxray header reader (a full row)"]
    payload = {
        "machine": machine(), "files": args.n, "header_bytes_median": header_bytes, "rounds": args.rounds,
        "us_per_file": per_file, "speedup_vs_dcmread": base / ours,
        "speedup_vs_dcmread_with_tags": per_file["pydicom dcmread + the row's tags"] / ours,
        "build_index_us_per_file": {"1 process": build_1, f"{cpus} processes": build_n},
        "select": selection,
    }
    print(json.dumps(payload, indent=2))
    table = [
        ["header: pydicom dcmread(stop_before_pixels)", f"{base:.0f} us/file", "1.00x"],
        ["header: pydicom dcmread + the row's tags", f"{per_file['pydicom dcmread + the row' + chr(39) + 's tags']:.0f} us/file",
         f"{base / per_file['pydicom dcmread + the row' + chr(39) + 's tags']:.2f}x"],
        ["header: dicomxray reader, full row", f"{ours:.0f} us/file", f"{base / ours:.2f}x"],
        ["build_index, 1 process (read + Parquet)", f"{build_1:.0f} us/file", f"{base / build_1:.2f}x"],
        [f"build_index, {cpus} processes", f"{build_n:.0f} us/file", f"{base / build_n:.2f}x"],
        [f"read_index, {args.rows:,} rows", f"{selection['read_index_s'] * 1e3:.0f} ms", ""],
        [f"select(query), {args.rows:,} rows -> {selection['matched']:,}", f"{selection['select_query_s'] * 1e3:.0f} ms", ""],
        [f"read_index(columns=path, error_type + 3 queried), {args.rows:,} rows",
         f"{selection['read_index_columns_s'] * 1e3:.0f} ms", ""],
        ["select(query) on those columns", f"{selection['select_query_columns_s'] * 1e3:.0f} ms", ""],
        ["select(callable), 100,000 rows", f"{selection['select_callable_100k_s'] * 1e3:.0f} ms", ""],
    ]
    md = [f"Machine: {payload['machine']}; {args.n} files, header ~{header_bytes:.0f} bytes, medians of "
          f"{args.rounds} interleaved passes", "", "| what | time | vs dcmread |", "|---|---|---|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in table]
    print("\n".join(md))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "index.json").write_text(json.dumps(payload, indent=2))
        (args.out / "index.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
