"""A cached epoch over DICOMweb against the same epoch from local files: a real Orthanc, the node-local cache.

    python -m benchmarks.bench_dicomweb [--images 160] [--epochs 5] [--quick] [--out bench_out]

``--images`` 512x512 JPEG-LS phantoms (each its own SOP Instance UID) are uploaded to an Orthanc with its
DICOMweb plugin (Debian's ``orthanc`` and ``orthanc-dicomweb``; the benchmark says so and stops when they are
absent) and kept as local files.  Epochs at 512x512 from the node-local cache after a warm-up epoch that fills
it: the local folder, and the ``dicomweb+http://`` root with ``remote_identity="listing"`` (the QIDO-RS listing
carries each instance's identity, so a cached read makes no request), read in-process (wall and CPU time per
image) and by a plain DataLoader (batch 8, 2 persistent forked workers; wall).  Medians of ``--epochs`` timed
epochs, the cases interleaved.  The goal (issue 27): the cached DICOMweb epoch >= 0.9x the cached local one.
Writes bench_out/dicomweb.json and dicomweb.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydicom import dcmread, uid

from .common import machine, write_report
from .data import bench_file

BATCH, WORKERS, SIZE = 8, 2, 512
TESTS = Path(__file__).resolve().parents[1] / "tests"  # the Orthanc the tests run (tests/remote_servers.py)


def _films(folder: Path, n: int) -> list[Path]:
    """``n`` copies of the 512x512 JPEG-LS phantom, each with its own Study/Series/SOP Instance UIDs."""
    folder.mkdir(parents=True)
    template = dcmread(bench_file(uid.JPEGLSLossless, height=512, width=512))
    study, series = uid.generate_uid(), [uid.generate_uid() for _ in range(n // 40 + 1)]
    out = []
    for i in range(n):
        template.StudyInstanceUID, template.SeriesInstanceUID = study, series[i // 40]
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
        path = folder / f"{template.SOPInstanceUID}.dcm"
        template.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def _in_process(ds: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(len(ds)):
        ds[i]
    return time.perf_counter() - wall, time.process_time() - cpu


def _loader_epoch(loader: Any, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    seen = sum(int(batch["image"].shape[0]) for batch in loader)
    assert seen == n, (seen, n)
    return time.perf_counter() - t0, float("nan")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(TESTS))
    from torch.utils.data import DataLoader

    from dicomxray import DicomXrayDataset
    from remote_servers import orthanc_paths, orthanc_server

    if orthanc_paths() is None:
        print("Orthanc and its DICOMweb plugin are not installed (apt-get install orthanc orthanc-dicomweb)")
        return {}
    n, epochs = (48, 3) if args.quick else (args.images, args.epochs)
    work = Path(tempfile.mkdtemp(prefix="dicomxray-bench-dicomweb-"))
    try:
        films = _films(work / "films", n)
        with orthanc_server(work / "orthanc") as server:
            t0 = time.perf_counter()
            server.upload(films)
            upload_s = time.perf_counter() - t0
            so = server.storage_options

            def local() -> Any:
                return DicomXrayDataset(work / "films", size=SIZE, cache=work / "c-local")

            def remote() -> Any:
                return DicomXrayDataset(server.dicomweb, size=SIZE, cache=work / "c-dicomweb", storage_options=so)

            cases: list[dict[str, Any]] = []
            for name, make in (("local files", local), ("DICOMweb (Orthanc), defaults", remote)):
                t0 = time.perf_counter()
                ds = make()
                listed = time.perf_counter() - t0
                first = _in_process(ds)[0]  # fills the cache
                cases.append({"case": f"cached: {name}, in-process", "ds": ds, "run": _in_process,
                              "first_epoch_ms_per_image": 1000 * first / n, "listing_ms": 1000 * listed})
                loader = DataLoader(make(), batch_size=BATCH, num_workers=WORKERS, persistent_workers=True,
                                    multiprocessing_context="fork")
                _loader_epoch(loader, n)  # starts the workers
                cases.append({"case": f"cached: {name}, plain DataLoader", "ds": loader,
                              "run": lambda loader: _loader_epoch(loader, n)})
            for c in cases:
                c["times"] = []
            for _ in range(epochs):
                for c in cases:
                    c["times"].append(c["run"](c["ds"]))
        rows = []
        for c in cases:
            wall = statistics.median(t[0] for t in c["times"])
            cpu = statistics.median(t[1] for t in c["times"])
            rows.append({"case": c["case"], "images": n, "ms_per_image": 1000 * wall / n,
                         "cpu_ms_per_image": 1000 * cpu / n if cpu == cpu else None,
                         **{k: c[k] for k in ("first_epoch_ms_per_image", "listing_ms") if k in c}})
        for r in rows:
            base = next(b for b in rows if b["case"].split(", ")[-1] == r["case"].split(", ")[-1])
            r["vs_local"] = base["ms_per_image"] / r["ms_per_image"]
        payload = {"machine": machine(), "images": n, "epochs": epochs, "upload_s": upload_s, "results": rows}
        table = [[r["case"], r["images"], r["ms_per_image"],
                  "" if r["cpu_ms_per_image"] is None else r["cpu_ms_per_image"], f"{r['vs_local']:.2f}x",
                  r.get("first_epoch_ms_per_image", ""), r.get("listing_ms", "")] for r in rows]
        md = write_report(args.out, "dicomweb", payload, table,
                          ["epoch", "images", "ms per image", "CPU ms per image", "vs the cached local epoch",
                           "uncached epoch 1, ms per image", "listing, ms"])
        print(f"{n} instances 512x512 JPEG-LS -> {SIZE}x{SIZE}, {epochs} timed epochs after a warm-up one, "
              f"interleaved; uploaded in {upload_s:.1f} s")
        print(md)
        return payload
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
