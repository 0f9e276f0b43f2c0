"""Where the time of read_xray(path, size=512) goes, stage by stage, for a few syntaxes.

Writes bench_out/stages.json and stages.md.  Run: python -m benchmarks.bench_stages [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

from pydicom import uid

from dicomxray import GeometryConfig, RenderConfig
from dicomxray.decode import decode_frame
from dicomxray.geometry import plan_geometry, resize
from dicomxray.header import display_tags, read_header
from dicomxray.render import render

from .common import machine, write_report
from .data import SYNTAXES, bench_file


def stages(path: Path, size: int) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    header = read_header(path)
    tags = display_tags(header)
    t1 = time.perf_counter()
    decoded = decode_frame(header)  # full resolution, to time every stage on the same pixels
    t2 = time.perf_counter()
    image, _ = render(decoded.array, tags, RenderConfig(), bits_allocated=header.bits_allocated,
                      bits_stored=header.bits_stored, signed=header.signed)
    t3 = time.perf_counter()
    resize(image, plan_geometry(header.rows, header.columns, GeometryConfig(size=size)))
    t4 = time.perf_counter()
    out.update(read_and_parse=t1 - t0, decode=t2 - t1, render_table=t3 - t2, resize=t4 - t3)
    return {k: v * 1e3 for k, v in out.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    rows, results = [], {}
    for syntax in (uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.RLELossless):
        path = bench_file(syntax)
        stages(path, args.size)  # warm-up
        runs = [stages(path, args.size) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[SYNTAXES[syntax]] = med
        rows.append([SYNTAXES[syntax], *med.values(), sum(med.values())])
    payload = {"machine": machine(), "size": args.size, "ms": results}
    md = write_report(args.out, "stages", payload, rows,
                      ["2500x2048 12-bit, run alone", "read + parse ms", "decode ms", "render (table) ms",
                       "resize ms", "total ms"])
    print(f"Machine: {payload['machine']}\n\n{md}")
    return payload


if __name__ == "__main__":
    main()
