"""Raw decode time of every installed backend, per transfer syntax: the evidence for the registry's order.

Writes bench_out/backends.json and backends.md.  Run: python -m benchmarks.bench_backends [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import warnings
from functools import partial
from pathlib import Path

from dicomxray import Pipeline
from dicomxray.pixels.decode import BACKENDS, backends_for, decode_frame
from dicomxray.testing import interleaved

from .common import machine, write_report
from .data import SYNTAXES, bench_file

ALL_BACKENDS = ("imagecodecs", "pillow", "pydicom")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    shape = dict(height=500, width=400) if args.quick else {}
    rows, results = [], []
    for syntax, label in SYNTAXES.items():
        names = [n for n in ALL_BACKENDS if n in backends_for(syntax) and BACKENDS[n].is_available(syntax)]
        if len(names) < 2:
            continue  # native syntaxes: numpy only
        header = Pipeline().header(bench_file(syntax, **shape))
        cases = {n: partial(decode_frame, header, backend=n) for n in names}
        t = interleaved(cases, 1 if args.quick else args.repeat)
        chosen = backends_for(syntax)[0]
        fastest = min(t, key=lambda n: t[n]["wall_ms"])
        results.append({"syntax": str(syntax), "label": label, "times": t, "default": chosen, "fastest": fastest})
        rows.append([label, *(f"{t[n]['wall_ms']:.1f}" if n in t else "-" for n in ALL_BACKENDS), chosen,
                     "yes" if chosen == fastest else f"no ({fastest})"])
        print(f"{label:<22} " + "  ".join(f"{n} {t[n]['wall_ms']:7.1f} ms" for n in names), flush=True)
    payload = {"machine": machine(), "results": results}
    md = write_report(args.out, "backends", payload, rows,
                      ["syntax (2500x2048 12-bit)", *(f"{n} ms" for n in ALL_BACKENDS), "default", "default is fastest"])
    print(f"\nMachine: {payload['machine']}\n\n{md}")
    return payload


if __name__ == "__main__":
    main()
