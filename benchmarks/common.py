"""Shared by the benchmark scripts: the machine's name and the JSON + Markdown reports.

(The interleaved timer is :func:`dicomxray.testing.interleaved`.)
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["machine", "write_report"]


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
