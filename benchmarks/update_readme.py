"""Paste the latest ``bench_out/<name>.md`` tables into the README and the documentation pages, between their
``<!-- bench:<name> -->`` markers, and copy the chart to ``docs/``.  Run after ``make bench``.

Every marker of every page is filled from the table of the same name; a marker whose table is missing is reported
(run the benchmark that writes it), and a table no page asks for is reported too.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"(<!-- bench:([\w-]+) -->\n).*?(<!-- /bench:\2 -->)", re.S)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def main(out: Path = ROOT / "bench_out") -> int:
    used: set[str] = set()
    missing: set[str] = set()

    def fill(m: re.Match[str]) -> str:
        name = m.group(2)
        table = out / f"{name}.md"
        if not table.exists():
            missing.add(name)
            return m.group(0)
        used.add(name)
        return m.group(1) + table.read_text().strip() + "\n" + m.group(3)

    for page in pages():
        text = page.read_text()
        new = MARKER.sub(fill, text)
        if new != text:
            page.write_text(new)
            print("updated", page.relative_to(ROOT))
    for name in sorted(missing):
        print(f"no {out / name}.md: run the benchmark that writes it (python -m benchmarks.run_all)", file=sys.stderr)
    unused = sorted(p.stem for p in out.glob("*.md")) if out.exists() else []
    for name in (n for n in unused if n not in used and n not in missing):
        print(f"{out / name}.md is not shown on any page (add <!-- bench:{name} --> markers)", file=sys.stderr)
    if (out / "speedup.png").exists():
        shutil.copyfile(out / "speedup.png", ROOT / "docs" / "speedup.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench_out"))
