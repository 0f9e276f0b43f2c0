"""Where the time of read_xray(path, size=512) goes, stage by stage, for a few syntaxes (CPU time, one thread).

Writes bench_out/stages.json and stages.md.  Run: python -m benchmarks.bench_stages [--repeat 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

from pydicom import uid

from dicomxray import DecodeConfig, Pipeline, PipelineConfig, pipeline_config
from dicomxray.pixels.pipeline import scratch_for

from .common import machine, write_report
from .data import SYNTAXES, bench_file


def stages(pipe: Pipeline, path: Path) -> dict[str, float]:
    """CPU time of each named stage of the very pipeline ``read_xray`` runs (``Pipeline.read`` renders into a
    reused buffer where the resize resamples: so does this)."""
    t0 = time.process_time()
    header = pipe.header(path)
    geom = pipe.plan(header)
    t1 = time.process_time()
    decoded = pipe.decode(header, geom)
    t2 = time.process_time()
    shape = decoded.array.shape
    with scratch_for(pipe.config, geom, shape, decoded.reduce) as out:
        image, _ = pipe.render(header, decoded, out=out)
        t3 = time.process_time()
        pipe.resize(image, geom, decoded.reduce)
        t4 = time.process_time()
    return {k: v * 1e3 for k, v in dict(read_and_parse=t1 - t0, decode=t2 - t1, render_table=t3 - t2,
                                         resize=t4 - t3).items()}


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
        pipe = Pipeline(pipeline_config(PipelineConfig(decode=DecodeConfig(threads=1)), size=args.size))
        stages(pipe, path)  # warm-up
        runs = [stages(pipe, path) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[SYNTAXES[syntax]] = med
        rows.append([SYNTAXES[syntax], *med.values(), sum(med.values())])
    payload = {"machine": machine(), "size": args.size, "ms": results}
    md = write_report(args.out, "stages", payload, rows,
                      ["2500x2048 12-bit, run alone, CPU time", "read + parse ms", "decode ms",
                       "render (table) ms", "resize ms", "total ms"])
    print(f"Machine: {payload['machine']}\n\n{md}")
    return payload


if __name__ == "__main__":
    main()
