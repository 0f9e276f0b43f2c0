"""A folder mixed the way archives are, cold, against the classic recipe and MONAI; and the decode thread policy.

    python -m benchmarks.bench_archive [--copies 1] [--repeat 3] [--out bench_out]

1. **Cold epoch over a mixed archive**: the shared real films (NEMA WG04 RG3 CR 1760x1760 uncompressed,
   JPEG Lossless, JPEG-LS, RLE, JPEG 2000 lossless and lossy; the Kodak CR hand 2500x2048 JPEG 2000
   lossless; a 1024x1024 JPEG baseline chest), copied ``--copies`` times, each file read once per pass to
   512x512 by the classic recipe, MONAI (``LoadImage`` + ``ScaleIntensity`` + ``Resize``, when installed),
   dicomxray by default and dicomxray with ``reduced_resolution=True``.  Files are interleaved (every method
   reads a file before the next file) and each pass rotates the order; per-file medians over ``--repeat``
   passes, summed per syntax, with the JPEG 2000 share of each method's time.
2. **Threads in one process**: ``read_xray(size=512)`` of the JPEG 2000 films with ``threads=1`` against
   the policy (every core here), interleaved.
3. **No oversubscription**: a 2-worker DataLoader epoch and ``build_cache(workers=2)`` (``cache build
   --workers 2``) over JPEG 2000 files with ``threads=1`` against the policy (one thread per worker here)
   and against forcing every core into each worker.

The machine is shared: the tables report medians and ratios; the spread is in the JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dicomxray import DecodeConfig, GeometryConfig, Pipeline, PipelineConfig, RenderConfig
from dicomxray.pixels.decode._threads import available_cores
from dicomxray.testing import classic_read_xray, interleaved

from .common import machine, write_report

SAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "dicom-samples"
SIZE = 512
#: The archive: file name, syntax label.
FILMS = [
    ("cr_rg3_uncompressed_mono1.dcm", "uncompressed"),
    ("cr_rg3_jpeg_lossless_mono1.dcm", "JPEG Lossless"),
    ("cr_rg3_jpegls_lossless_mono1.dcm", "JPEG-LS"),
    ("cr_rg3_rle_mono1.dcm", "RLE"),
    ("cr_rg3_j2k_lossless_mono1.dcm", "JPEG 2000 lossless"),
    ("cr_rg3_j2k_lossy_mono1.dcm", "JPEG 2000 lossy"),
    ("cr_hand_j2k_lossless_12bit.dcm", "JPEG 2000 lossless"),
    ("cxr_siim_jpeg_baseline_mono2.dcm", "JPEG baseline"),
]
J2K_FILMS = ["cr_rg3_j2k_lossless_mono1.dcm", "cr_hand_j2k_lossless_12bit.dcm"]


def _config(threads: int | None = None, reduced: bool = False) -> PipelineConfig:
    # The reduced path needs window (or percentile) normalization: minmax is refused with it.
    return PipelineConfig(decode=DecodeConfig(threads=threads, reduced_resolution=reduced),
                          render=RenderConfig(normalize="window" if reduced else "minmax"), geometry=GeometryConfig(size=SIZE))


def _monai() -> Callable[[str], Any] | None:
    try:
        from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Resize, ScaleIntensity
    except ImportError:
        return None
    chain = Compose([LoadImage(image_only=True), EnsureChannelFirst(), ScaleIntensity(), Resize((SIZE, SIZE))])
    return lambda path: chain(path)


def archive(files: list[tuple[Path, str]], repeat: int) -> tuple[list[list[Any]], dict[str, Any]]:
    methods: dict[str, Callable[[str], Any]] = {"classic": lambda p: classic_read_xray(p, SIZE)}
    monai = _monai()
    if monai is not None:
        methods["MONAI"] = monai
    default, reduced = Pipeline(_config()), Pipeline(_config(reduced=True))
    methods["dicomxray"] = lambda p: default.read(p)
    methods["dicomxray reduced"] = lambda p: reduced.read(p)
    names = list(methods)
    times: dict[tuple[str, str], list[float]] = {}
    for path, _ in files:  # warm-up: page cache, lazy imports
        for fn in methods.values():
            fn(str(path))
    for rnd in range(repeat):
        order = names[rnd % len(names):] + names[: rnd % len(names)]
        for path, _ in files:
            for name in order:
                t0 = time.perf_counter()
                methods[name](str(path))
                times.setdefault((str(path), name), []).append((time.perf_counter() - t0) * 1000)
    per_syntax: dict[str, dict[str, float]] = {}
    for path, label in files:
        for name in names:
            row = per_syntax.setdefault(label, dict.fromkeys(names, 0.0))
            row[name] += statistics.median(times[(str(path), name)])
    rows: list[list[Any]] = [[label, *(got[n] for n in names)] for label, got in per_syntax.items()]
    total = {n: sum(r[n] for r in per_syntax.values()) for n in names}
    j2k = {n: sum(r[n] for lbl, r in per_syntax.items() if lbl.startswith("JPEG 2000")) for n in names}
    rows.append(["total (one epoch, ms)", *(total[n] for n in names)])
    rows.append(["JPEG 2000 share", *(f"{100 * j2k[n] / total[n]:.0f}%" for n in names)])
    rows.append(["classic / method", *(f"{total['classic'] / total[n]:.2f}x" for n in names)])
    spread = {f"{Path(p).name} {n}": v for (p, n), v in times.items()}
    return [["syntax (ms per pass)", *names], *rows], {"total_ms": total, "j2k_ms": j2k, "samples_ms": spread}


def one_process(repeat: int) -> tuple[list[list[Any]], dict[str, Any]]:
    rows, raw = [], {}
    one, policy = Pipeline(_config(threads=1)), Pipeline(_config())
    for name in J2K_FILMS:
        path = str(SAMPLES / name)
        cases: dict[str, Callable[[], Any]] = {"threads=1": partial(one.read, path), "policy": partial(policy.read, path)}
        got = interleaved(cases, repeat)
        ratio = got["threads=1"]["wall_ms"] / got["policy"]["wall_ms"]
        rows.append([name, available_cores(), f"{os.getloadavg()[0]:.1f}", got["threads=1"]["wall_ms"],
                     got["policy"]["wall_ms"], f"{ratio:.2f}x", got["threads=1"]["cpu_ms"], got["policy"]["cpu_ms"]])
        raw[name] = got
    return rows, raw


class _Files:
    """A map-style dataset: one rendered image per file (what a DataLoader worker runs)."""

    def __init__(self, files: list[str], config: PipelineConfig) -> None:
        self.files, self.pipeline = files, Pipeline(config)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.pipeline.read(self.files[index]).pixels


def workers(files: list[str], repeat: int, tmp: Path) -> tuple[list[list[Any]], dict[str, Any]]:
    from torch.utils.data import DataLoader

    from dicomxray.jobs.tasks import build_cache

    cores = available_cores()
    configs = {"threads=1": _config(threads=1), "policy": _config(), f"threads={cores} (every core)": _config(cores)}
    counter = iter(range(10**6))

    def loader(cfg: PipelineConfig) -> Callable[[], Any]:
        return lambda: [None for _ in DataLoader(_Files(files, cfg), batch_size=4, num_workers=2)]  # type: ignore[arg-type]

    def cache(cfg: PipelineConfig) -> Callable[[], Any]:
        return lambda: build_cache(files, tmp / f"cache{next(counter)}", config=cfg, workers=2, progress=False)

    got_loader = interleaved({k: loader(c) for k, c in configs.items()}, repeat, warmup=0)
    got_cache = interleaved({k: cache(c) for k, c in configs.items()}, repeat, warmup=0)
    base_l, base_c = got_loader["threads=1"]["wall_ms"], got_cache["threads=1"]["wall_ms"]
    rows = [[k, got_loader[k]["wall_ms"], f"{base_l / got_loader[k]['wall_ms']:.2f}x", got_cache[k]["wall_ms"],
             f"{base_c / got_cache[k]['wall_ms']:.2f}x"] for k in configs]
    return rows, {"dataloader": got_loader, "cache_build": got_cache}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--copies", type=int, default=1, help="copies of each film in the archive folder")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved passes (medians)")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    args = ap.parse_args(argv)
    if not (SAMPLES / "SAMPLES.tsv").exists():
        print(f"shared samples not found in {SAMPLES}: nothing to measure")
        return 0
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="dicomxray-archive-"))
    try:
        files = []
        for i in range(args.copies):
            for name, label in FILMS:
                if (SAMPLES / name).exists():
                    files.append((Path(shutil.copy(SAMPLES / name, tmp / f"{i}_{name}")), label))
        table, raw_archive = archive(files, args.repeat)
        print(table, flush=True)
        threads_rows, raw_threads = one_process(max(7, args.repeat))
        print(threads_rows, flush=True)
        j2k = [str(shutil.copy(SAMPLES / name, tmp / f"w{i}_{name}")) for i in range(4) for name in J2K_FILMS[:1]]
        j2k += [str(shutil.copy(SAMPLES / J2K_FILMS[1], tmp / "w_hand.dcm"))]
        worker_rows, raw_workers = workers(j2k, args.repeat, tmp)
        print(worker_rows, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    payload = {"machine": machine(), "cores": available_cores(), "size": SIZE, "archive": raw_archive,
               "threads": raw_threads, "workers": raw_workers}
    md = write_report(args.out, "archive", payload, table[1:], table[0])
    md2 = write_report(args.out, "archive_threads", payload, threads_rows,
                       ["film", "cores", "load average", "threads=1 ms", "policy ms", "speed-up", "threads=1 CPU ms",
                        "policy CPU ms"])
    md3 = write_report(args.out, "archive_workers", payload, worker_rows,
                       ["threads", "2-worker DataLoader epoch ms", "vs threads=1", "build_cache(workers=2) ms",
                        "vs threads=1"])
    print(md, md2, md3, sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
