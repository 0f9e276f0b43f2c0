"""Hardening stress run: thousands of fuzzed files, many kill -9s, concurrent writers, a memory bomb.

Every fuzzed case runs in a child process, so a decoder that crashes the process is counted, not fatal.
Writes bench_out/stress.json and stress.md (pasted into the README by update_readme.py).
Run: python benchmarks/stress.py [--cases 20000] [--kills 30] [--writers 6]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, write_report  # noqa: E402
from benchmarks.hostile import kill_randomly, read_and_check  # noqa: E402
from dicomxray.synth import ENCODABLE_SYNTAXES, chest_phantom, write_dicom  # noqa: E402

_CHILD = r"""
import json, os, sys, time, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
from benchmarks.hostile import mutate
from dicomxray import read_xray, DicomXrayError
src_dir, start, stop, work = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sources = sorted(os.listdir(src_dir))
blobs = [open(os.path.join(src_dir, s), "rb").read() for s in sources]
case = os.path.join(work, "case.dcm")
for seed in range(start, stop):
    i = seed % len(blobs)
    name, data = mutate(blobs[i], seed)
    open(case, "wb").write(data)
    t0 = time.perf_counter()
    try:
        read_xray(case, 32)
        outcome = "decoded"
    except DicomXrayError as exc:
        outcome = "named_error" if "case.dcm" in str(exc) else "unnamed_error"
    except Exception as exc:
        outcome = "other_exception:" + type(exc).__name__
    print(json.dumps([seed, sources[i], name, outcome, time.perf_counter() - t0]), flush=True)
"""


def fuzz(cases: int, work: Path) -> dict:
    src = work / "sources"
    for shape in ((48, 64), (96, 120)):  # two sources per syntax: codestreams differ in layout
        img = chest_phantom(*shape, bits=12, seed=sum(shape))
        for ts in ENCODABLE_SYNTAXES:
            data, bits = ((img >> 4).astype("uint8"), 8) if ts.endswith(".4.50") else (img, 12)
            write_dicom(src / f"{ts}_{shape[0]}x{shape[1]}.dcm", data, syntax=ts, bits_stored=bits)
    counts: dict[str, int] = {}
    crashes, slowest, seed = [], 0.0, 0
    root = str(Path(__file__).resolve().parent.parent)
    while seed < cases:
        stop = min(cases, seed + 250)
        r = subprocess.run([sys.executable, "-c", _CHILD, root, str(src), str(seed), str(stop), str(work)],
                           capture_output=True, text=True, timeout=1800)
        last = seed - 1
        for line in r.stdout.splitlines():
            s, syntax, name, outcome, dt = json.loads(line)
            counts[outcome] = counts.get(outcome, 0) + 1
            slowest = max(slowest, dt)
            last = s
        if r.returncode != 0:  # the child died: the case after the last reported one killed it
            crashes.append({"seed": last + 1, "returncode": r.returncode})
            counts["crash"] = counts.get("crash", 0) + 1
        seed = max(last + 2 if r.returncode != 0 else stop, seed + 1)
        print(f"  fuzz: {seed}/{cases} cases, {counts}", flush=True)
    return {"cases": sum(counts.values()), "outcomes": counts, "crashes": crashes, "slowest_case_s": slowest}


def kills(rounds: int, work: Path) -> dict:
    import numpy as np
    from PIL import Image

    from dicomxray import XrayCache, make_config, read_xray

    src = work / "kill_src"
    for i in range(24):
        write_dicom(src / f"{i:02d}.dcm", chest_phantom(1000, 1000, bits=12, seed=i), bits_stored=12,
                    syntax="1.2.840.10008.1.2.4.80")
    cache, out = work / "kill_cache", work / "kill_png"
    exe = [sys.executable, "-m", "dicomxray"]
    cmds = []
    for r in range(rounds):
        cmds.append([*exe, "cache", "build", str(src), "--cache-dir", str(cache), "--size", str(64 + r), "--quiet"])
        cmds.append([*exe, "export", str(src), str(out), "--size", "64", "--quiet", "--workers", "1", "--overwrite"])
    killed = kill_randomly(cmds, random.Random(1))
    c = XrayCache(cache, check_crc=True)
    verify = c.verify(remove=False)
    wrong = 0
    for f in src.glob("*.dcm"):
        got = c.get(f, make_config(64))
        wrong += got is not None and not np.array_equal(got.pixels, read_xray(f, 64))
    wrong_png = sum(not np.array_equal(np.asarray(Image.open(p)), read_xray(src / f"{p.stem}.dcm", 64))
                    for p in out.glob("*.png"))
    return {"runs": len(cmds), "killed": killed, "entries": verify["ok"] + verify["corrupt"],
            "corrupt_entries": verify["corrupt"], "wrong_entries": int(wrong), "pngs": len(list(out.glob("*.png"))),
            "wrong_pngs": int(wrong_png)}


def concurrency(writers: int, work: Path) -> dict:
    src = work / "conc_src"
    for i in range(20):
        write_dicom(src / f"{i}.dcm", chest_phantom(400, 400, bits=12, seed=i), bits_stored=12)
    with ProcessPoolExecutor(writers) as pool:
        bad = list(pool.map(read_and_check, [(str(src), str(work / "conc_cache"), s) for s in range(writers)]))
    return {"processes": writers, "reads_per_process": 40, "wrong_or_corrupt_reads": int(sum(bad))}


def memory_bomb(work: Path) -> dict:
    import numpy as np
    import pydicom

    path = write_dicom(work / "bomb.dcm", np.zeros((8, 8), np.uint16))
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(path)
    code = ("import resource, sys\nfrom dicomxray import read_xray, ImageTooLargeError\n"
            "b = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    read_xray(sys.argv[1])\nexcept ImageTooLargeError:\n    print('refused')\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - b)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    refused, delta = r.stdout.split()
    return {"declared_bytes": 65535 * 65535 * 1000 * 2, "refused": refused == "refused", "rss_growth_kb": int(delta)}


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
        result = {"machine": machine(), "fuzz": fuzz(args.cases, work), "kill9": kills(args.kills, work),
                  "concurrency": concurrency(args.writers, work), "memory_bomb": memory_bomb(work)}
    result["seconds"] = time.perf_counter() - t0
    f, k, c, m = result["fuzz"], result["kill9"], result["concurrency"], result["memory_bomb"]
    rows = [
        ["fuzzed files (15 syntaxes x 2 sizes x 7 mutations)", f["cases"],
         f"{f['outcomes'].get('decoded', 0)} decoded, {f['outcomes'].get('named_error', 0)} named errors, "
         f"{f.get('outcomes', {}).get('crash', 0)} crashes, "
         f"{sum(v for k_, v in f['outcomes'].items() if k_ not in ('decoded', 'named_error', 'crash'))} other; "
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
