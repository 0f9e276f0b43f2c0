"""Timing helpers shared by the benchmark scripts: interleaved runs, medians, reports."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def interleaved(cases: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, dict[str, float]]:
    """Run every case in turn (A B C A B C ...) ``repeat`` times; medians of wall and CPU ms.

    Interleaving spreads the noise of a shared machine evenly over the cases.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {k: {"wall_ms": statistics.median(wall[k]), "cpu_ms": statistics.median(cpu[k])} for k in cases}


def write_report(out: Path, name: str, payload: dict[str, Any], table: list[list[Any]], header: list[str]) -> str:
    """Write ``name.json`` and ``name.md`` under ``out``; return the Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    md = "\n".join(lines) + "\n"
    (out / f"{name}.md").write_text(f"Machine: {payload.get('machine', machine())}\n\n" + md)
    return md


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    return str(v)
