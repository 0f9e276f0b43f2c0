"""read_xray(path, size=512) against the classic recipe and the raw decode, per transfer syntax.

Two ratios, both against the classic recipe (interleaved, medians):

* **per CPU** (leads): CPU time of one process with every decoder single-threaded
  (``DecodeConfig(threads=1)``; the classic recipe's pydicom decoders are serial): the throughput of a
  DataLoader with one worker per core, what a training run gets;
* **wall**: wall-clock time with the thread policy's default (JPEG 2000 and JPEG XL decode on every core
  this process may use): what one ``read_xray`` call in a notebook feels like.

Prints a Markdown table and writes bench_out/decode.json and decode.md.
Run: python -m benchmarks.bench_decode [--repeat 5] [--quick] [--only uncompressed,rle] [--no-monai]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from dicomxray import DecodeConfig, Pipeline, PipelineConfig, load_xray, pipeline_config, read_xray
from dicomxray.pixels.decode import decode_frame
from dicomxray.testing import classic_read_xray, interleaved

from .common import machine, write_report
from .data import SYNTAXES, bench_file


def monai_case(path: Path, size: int):  # pragma: no cover - optional peer
    try:
        from monai.transforms import Compose, LoadImage, Resize, ScaleIntensity
    except ImportError:
        return None
    import torch

    torch.set_num_threads(1)  # one thread like every other case: idle pool threads would spin on our CPU time
    pipeline = Compose([LoadImage(reader="PydicomReader", image_only=True, ensure_channel_first=True),
                        ScaleIntensity(), Resize((size, size))])
    try:
        pipeline(str(path))
    except Exception as exc:  # MONAI's reader does not take every syntax
        print(f"  MONAI cannot read {path.name}: {type(exc).__name__}: {str(exc)[:80]}")
        return None
    return lambda: pipeline(str(path))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="small images, 2 repeats (a smoke test)")
    parser.add_argument("--full", action="store_true",
                        help="every syntax at 2500x2048 12-bit MONOCHROME1 and at 3000x3000 14-bit MONOCHROME2")
    parser.add_argument("--only", default="", help="comma-separated syntax labels (e.g. uncompressed,rle)")
    parser.add_argument("--no-monai", action="store_true", help="leave MONAI out of the comparison")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    shape = dict(height=500, width=400) if args.quick else {}
    repeat = 2 if args.quick else args.repeat
    variants = [(s, dict(shape, bits=12, mono1=True)) for s in SYNTAXES]
    if not args.quick:
        from pydicom import uid

        big = list(SYNTAXES) if args.full else [uid.ExplicitVRLittleEndian, uid.JPEGLosslessSV1, uid.JPEG2000Lossless]
        for s in big:
            variants.append((s, dict(height=3000, width=3000, bits=14, mono1=False)))
    if args.only:
        keep = set(args.only.split(","))
        variants = [(s, p) for s, p in variants if SYNTAXES[s] in keep]
    serial = PipelineConfig(decode=DecodeConfig(threads=1))
    rows, results = [], []
    for syntax, params in variants:
        path = bench_file(syntax, **params)
        header = Pipeline().header(path)
        one = pipeline_config(serial, size=args.size)
        cases = {
            "classic": lambda p=path: classic_read_xray(str(p), args.size),
            "dicomxray": lambda p=path: read_xray(p, args.size),
            "raw_decode": lambda h=header: decode_frame(h),
        }
        threaded = load_xray(path, args.size).meta.decoder != "numpy" and decode_frame(header).threads > 1
        if threaded:  # the decoder uses several threads by default: time one thread for the per-CPU figure
            cases["dicomxray_1_thread"] = lambda p=path, c=one: read_xray(p, config=c)
        peer = None if args.no_monai else monai_case(path, args.size)
        monai_corr = None
        if peer is not None:
            cases["monai"] = peer
            theirs = np.asarray(peer()[0]).T  # MONAI arrays are (x, y): transpose to rows x columns
            monai_corr = float(np.corrcoef(theirs.ravel(), read_xray(path, args.size).ravel())[0, 1])
        t = interleaved(cases, repeat)
        per_cpu = t["dicomxray_1_thread" if threaded else "dicomxray"]
        fast = load_xray(path, args.size)
        meta = fast.meta
        psnr = None
        if meta.reduce:  # reduced-resolution decode: how close to the full-resolution path?
            full = read_xray(path, args.size, config=PipelineConfig(decode=DecodeConfig(reduced_resolution=False)))
            mse = float(np.mean((fast.pixels.astype(np.float64) - full.astype(np.float64)) ** 2))
            psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
        label = f"{SYNTAXES[syntax]} {header.rows}x{header.columns} {header.bits_stored}-bit"
        cpu_ratio = t["classic"]["cpu_ms"] / per_cpu["cpu_ms"]
        wall_ratio = t["classic"]["wall_ms"] / t["dicomxray"]["wall_ms"]
        over = t["dicomxray"]["wall_ms"] / t["raw_decode"]["wall_ms"]
        compression = header.rows * header.columns * 2 / path.stat().st_size  # against 16-bit storage
        results.append({"case": label, "syntax": str(syntax), "decoder": meta.decoder, "reduce": meta.reduce,
                        "compression_vs_16bit": compression, "times": t,
                        "speedup_per_cpu": cpu_ratio, "speedup_wall": wall_ratio,
                        "vs_raw_decode": over,
                        "psnr_vs_full_resolution_db": psnr, "monai_correlation_with_dicomxray": monai_corr})
        monai = "-"
        if "monai" in t:
            m = t["monai"]
            monai = (f"{m['cpu_ms']:.1f} / {m['wall_ms']:.1f}: {m['cpu_ms'] / per_cpu['cpu_ms']:.1f}x / "
                     f"{m['wall_ms'] / t['dicomxray']['wall_ms']:.1f}x (r={monai_corr:+.2f})")
        rows.append([label, f"{compression:.1f}",
                     meta.decoder + (f" (1/{2**meta.reduce}, {psnr:.1f} dB)" if meta.reduce else ""),
                     t["classic"]["cpu_ms"], per_cpu["cpu_ms"], f"**{cpu_ratio:.1f}x**",
                     t["classic"]["wall_ms"], t["dicomxray"]["wall_ms"], f"{wall_ratio:.1f}x",
                     t["raw_decode"]["wall_ms"], f"{over:.2f}", monai])
        print(f"{label:<38} per CPU: classic {t['classic']['cpu_ms']:6.1f} ms, dicomxray {per_cpu['cpu_ms']:6.1f} ms"
              f" = {cpu_ratio:4.1f}x | wall: {t['classic']['wall_ms']:6.1f} / {t['dicomxray']['wall_ms']:6.1f} ms"
              f" = {wall_ratio:4.1f}x | raw decode {t['raw_decode']['wall_ms']:6.1f} ms", flush=True)
    payload = {"machine": machine(), "size": args.size, "repeat": repeat, "results": results}
    md = write_report(args.out, "decode", payload, rows,
                      ["image", "compression vs 16-bit", "decoder",
                       "classic CPU ms", "dicomxray CPU ms, 1 thread", "speed-up per CPU",
                       "classic wall ms", "dicomxray wall ms, decoder threads", "speed-up, wall",
                       "raw decode wall ms", "dicomxray / raw decode, wall",
                       "MONAI CPU / wall ms: dicomxray's speed-up over it"])
    print(f"\nMachine: {payload['machine']}\n\n{md}")
    return payload


if __name__ == "__main__":
    main()
