"""Hardening stress run: thousands of fuzzed files, many kill -9s, concurrent processes, a memory bomb.

The same runners as tests/test_hardening.py (:mod:`dicomxray.testing`), with large counts.  Every fuzzed case
runs in a child process, so a decoder that crashes the process is counted, not fatal.
Writes bench_out/stress.json and stress.md (pasted into the README by update_readme.py).
Run: python -m benchmarks.stress [--cases 20000] [--kills 30] [--writers 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from dicomxray.testing import (
    ENCODABLE_SYNTAXES,
    MUTATIONS,
    fuzz_files,
    fuzz_sources,
    kill_cache_build_and_export,
    memory_bomb,
    share_one_cache,
)

from .common import machine, write_report


def _plain(report: Any) -> dict[str, Any]:
    """A report's fields without its paths (they name a deleted temporary folder)."""
    return {k: v for k, v in dataclasses.asdict(report).items() if not isinstance(v, Path)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--writers", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dxstress-") as tmp:
        work = Path(tmp)
        sources = fuzz_sources(work / "sources")  # every syntax at two sizes: codestreams differ in layout
        fuzz = fuzz_files(sources, range(args.cases), work,
                          progress=lambda done, total, counts: print(f"  fuzz: {done}/{total} cases, {counts}", flush=True))
        kill = kill_cache_build_and_export(work, args.kills, random.Random(1))
        share = share_one_cache(work, args.writers, files=20, shape=(400, 400))
        bomb = memory_bomb(work)
        result: dict[str, Any] = {
            "machine": machine(),
            "fuzz": {**_plain(fuzz), "cases": fuzz.cases},
            "kill9": {**_plain(kill), "wrong_entries": len(kill.wrong_entries), "wrong_pngs": len(kill.wrong_pngs)},
            "concurrency": {**_plain(share), "wrong_or_corrupt_reads": sum(share.bad)},
            "memory_bomb": _plain(bomb),
        }
    result["seconds"] = time.perf_counter() - t0
    f, k, c, m = result["fuzz"], result["kill9"], result["concurrency"], result["memory_bomb"]
    outcomes = f["outcomes"]
    rows = [
        [f"fuzzed files ({len(ENCODABLE_SYNTAXES)} syntaxes x 2 sizes x {len(MUTATIONS)} mutations)", f["cases"],
         f"{outcomes.get('decoded', 0)} decoded, {outcomes.get('named_error', 0)} named errors, "
         f"{outcomes.get('crash', 0)} crashes, "
         f"{sum(v for k_, v in outcomes.items() if k_ not in ('decoded', 'named_error', 'crash'))} other; "
         f"slowest case {f['slowest_case_s']:.2f} s"],
        ["kill -9 of cache build / export", f"{k['killed']} of {k['runs']} runs",
         f"{k['entries']} entries, {k['corrupt_entries']} corrupt, {k['wrong_entries']} wrong; "
         f"{k['pngs']} PNGs, {k['wrong_pngs']} wrong"],
        ["concurrent processes on one cache", c["processes"], f"{c['wrong_or_corrupt_reads']} wrong or corrupt reads"],
        ["file declaring 65535 x 65535 x 1000 frames", "1",
         f"{'refused' if m['refused'] else 'NOT refused'}; RSS grew {m['rss_growth_kb']} KiB"],
    ]
    md = write_report(args.out, "stress", result, rows, ["check", "count", "outcome"])
    print(f"\nMachine: {result['machine']}\n\n{md}\n{result['seconds']:.0f} s")
    return result


if __name__ == "__main__":
    main()
