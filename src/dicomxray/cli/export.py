"""``dicomxray export SOURCE TARGET``: render a folder to PNG/JPEG, mirroring the tree."""

from __future__ import annotations

import argparse
import sys

from ..jobs.tasks import export_folder
from . import _options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="render a folder of DICOMs to PNG/JPEG, mirroring the tree",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", help="a DICOM file or folder (searched by content, any file name), or a URL prefix")
    p.add_argument("target", help="output folder")
    p.add_argument("--format", choices=["png", "jpg"], default="png", help="image format (jpg: 8-bit only)")
    p.add_argument("--workers", type=_options.workers, default=None, help=_options.WORKERS_HELP)
    p.add_argument("--overwrite", action="store_true", help="rewrite targets that are up to date")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="raise: exit 1 if any file failed (all others are still written)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _options.add_remote_options(p)
    _options.add_pipeline_options(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    cfg = _options.config_from(args)
    if cfg.render.dtype == "float32":
        args.parser.error("argument --dtype: export writes images; use uint8 or uint16")
    if cfg.render.dtype == "uint16" and args.format == "jpg":
        args.parser.error("argument --dtype: uint16 needs --format png (JPEG is 8-bit)")
    with _options.client_for(args) as client:
        results = export_folder(args.source, args.target, fmt=args.format, config=cfg, workers=args.workers,
                                overwrite=args.overwrite, progress=not args.quiet,
                                storage_options=args.storage_options, client=client, shard_size=args.shard_size)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed")}
    print(f"export: {counts['written']} written, {counts['skipped']} up to date, {counts['failed']} failed -> {args.target}")
    for r in results:
        if r.status == "failed":
            print(f"  failed: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] and args.on_error == "raise" else 0
