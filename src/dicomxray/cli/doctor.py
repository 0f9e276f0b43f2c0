"""``dicomxray doctor``: which transfer syntaxes decode here, by which backend, and what to install."""

from __future__ import annotations

import argparse
import json

from ..pixels.decode import BACKENDS, capability_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="which transfer syntaxes decode here, by which backend")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = capability_report()
    missing = [r for r in rows if r["backend"] is None]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if missing else 0
    print(f"{'transfer syntax':<46} {'uid':<24} {'backend':<12} fallbacks / install")
    for r in rows:
        extra = ", ".join(r["fallbacks"]) if r["backend"] else "pip install " + " ".join(r["install"])
        print(f"{r['name']:<46} {r['uid']:<24} {r['backend'] or 'MISSING':<12} {extra}")
    print(f"\n{len(rows) - len(missing)}/{len(rows)} transfer syntaxes decodable")
    print("\nregistered backends (built-ins, register_backend, the dicomxray.decoders entry points):")
    for name, backend in BACKENDS.items():
        versions = ", ".join(f"{d} {v}" for d, v in backend.versions().items() if v != "-") or "-"
        print(f"  {name:<14} {len(backend.syntaxes):>2} syntaxes  {versions}")
    return 1 if missing else 0
