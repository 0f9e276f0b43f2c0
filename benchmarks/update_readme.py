"""Paste the latest bench_out/decode.md and loader.md into README.md between the bench markers,
and copy the chart to docs/.  Run after ``make bench``."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path = ROOT / "bench_out") -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name in ("decode", "loader", "backends", "stages", "fidelity_invariance", "fidelity_reduced", "index", "remote",
                 "stress"):
        if not (out / f"{name}.md").exists():
            print(f"no {out / name}.md: run python -m benchmarks.{'stress' if name == 'stress' else 'run_all'} first")
            continue
        table = (out / f"{name}.md").read_text().strip()
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
        text, n = pattern.subn(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
        if n != 1:
            print(f"README.md has no bench:{name} markers", file=sys.stderr)
            return 1
    readme.write_text(text)
    (ROOT / "docs").mkdir(exist_ok=True)
    shutil.copyfile(out / "speedup.png", ROOT / "docs" / "speedup.png")
    print("README.md and docs/speedup.png updated from", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench_out"))
