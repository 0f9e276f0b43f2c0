"""The whole suite: per-syntax decode, DataLoader epochs and cache reads, decoder backends; JSON, Markdown, a chart.

Run: python -m benchmarks.run_all --out bench_out   (``make bench``)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import (
    bench_archive,
    bench_backends,
    bench_decode,
    bench_dicomweb,
    bench_fidelity,
    bench_index,
    bench_loader,
    bench_remote,
    bench_stages,
    bench_targets,
)
from .chart import bar_chart

GOALS = {  # issue #26: speed-up per CPU (CPU time, decoders single-threaded) over the classic recipe at size 512
    "uncompressed": 8.0, "jpeg-lossless-sv1": 6.0, "jpeg-lossless-p14": 6.0, "jpeg-ls": 4.5, "rle": 5.0,
    "htj2k-lossless": 4.0, "jpeg2000-lossless": 1.05, "jpeg2000-lossy": 1.05,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    common = ["--out", str(args.out)] + (["--quick"] if args.quick else [])
    dec = bench_decode.main(common)
    loader = bench_loader.main(common)
    bench_backends.main(common)
    bench_archive.main(["--out", str(args.out)])
    if not args.quick:
        bench_stages.main(["--out", str(args.out)])
        bench_fidelity.main(["--out", str(args.out)])
        bench_index.main(["--out", str(args.out)])
    remote = bench_remote.main(common)
    targets = bench_targets.main(common)
    dicomweb = bench_dicomweb.main(common)
    labels = [r["case"].split(" ")[0] for r in dec["results"] if "2500x2048" in r["case"] or args.quick]
    speedups = [r["speedup_per_cpu"] for r in dec["results"] if "2500x2048" in r["case"] or args.quick]
    bar_chart(labels, speedups, args.out / "speedup.png",
              title=f"read_xray(size={dec['size']}) speed-up per CPU over the classic recipe ({dec['machine']})")
    print("\nGoals (speed-up over the classic recipe; per CPU = CPU time with every decoder single-threaded, the "
          "throughput of one worker per core; wall = wall clock with the decoders' own threads):")
    misses = 0
    for r in dec["results"]:
        label = r["case"].split(" ")[0]
        if label in GOALS and ("2500x2048" in r["case"] or args.quick):
            ok = r["speedup_per_cpu"] >= GOALS[label]
            misses += not ok
            print(f"  {label:<22} per CPU {r['speedup_per_cpu']:5.1f}x (goal {GOALS[label]}x) {'ok' if ok else 'MISSED'}"
                  f"   wall {r['speedup_wall']:5.1f}x")
        if r["syntax"].startswith("1.2.840.10008.1.2.4") and not r["reduce"]:
            ok = r["vs_raw_decode"] <= 1.15
            print(f"  {label:<22} {r['vs_raw_decode']:5.2f}x of the raw decode, wall (goal <= 1.15) "
                  f"{'ok' if ok else 'MISSED'}")
    for r in loader.get("ratios", []):
        if r["case"].startswith("dicomxray") and r["vs_limit"] is not None:
            print(f"  workers={r['workers']} {r['case']:<55} {r['vs_limit']:5.2f}x its limit (goal >= 0.85)")
        if "RAM" in r["case"] and r["case"].startswith("dicomxray") and r["vs_monai"] is not None:
            print(f"  workers={r['workers']} {r['case']:<55} {r['vs_monai']:5.2f}x MONAI CacheDataset (goal >= 1)")
    goals = {"HTTP 50 ms, plain DataLoader": ("vs_plain_http_0ms", 0.7),
             "HTTP 50 ms, PrefetchSampler": ("vs_plain_http_0ms", 0.9),
             "cached: HTTP 50 ms, request, plain DataLoader": ("vs_local", 0.7),
             "cached: HTTP 50 ms, request, PrefetchSampler": ("vs_local", 0.7),
             "cached: S3 (moto), listing, plain DataLoader": ("vs_local", 0.9),
             "cached: S3 (moto), listing, PrefetchSampler": ("vs_local", 0.9)}
    for r in remote.get("results", []):
        if r["case"] in goals:
            key, goal = goals[r["case"]]
            ok = r[key] >= goal
            print(f"  {r['case']:<48} {r[key]:5.2f}x ({key}, goal >= {goal}) {'ok' if ok else 'MISSED'}")
    for r in targets["results"]:
        if r["case"] != "boxes, no masks":
            ok = r["vs_no_masks"] <= bench_targets.GOAL
            print(f"  cached epoch, {r['case']:<40} {r['vs_no_masks']:5.2f}x of no masks (goal <= "
                  f"{bench_targets.GOAL}) {'ok' if ok else 'MISSED'}")
    for r in dicomweb.get("results", []):
        if "DICOMweb" in r["case"]:
            ok = r["vs_local"] >= 0.85
            print(f"  {r['case']:<48} {r['vs_local']:5.2f}x of the cached local epoch (goal >= 0.85) "
                  f"{'ok' if ok else 'MISSED'}")
    print(f"\nsuite ran in {time.perf_counter() - t0:.0f} s; figures in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
