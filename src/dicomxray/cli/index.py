"""``dicomxray index ROOT -o index.parquet``: one row per DICOM file from its header, never its pixels."""

from __future__ import annotations

import argparse
import os

from ..index import build_index
from . import _options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index the headers of a folder or archive into Parquet (or CSV)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("root", help="a folder or a URL prefix (s3://bucket/prefix...; files found by content, "
                                "DICOMDIRs followed)")
    p.add_argument("-o", "--out", default="index.parquet", help="output: *.parquet (pyarrow), or *.csv")
    p.add_argument("--workers", type=_options.workers, default=None,
                   help=_options.WORKERS_HELP.replace("quota;", "quota, or this process for < 1,000 files;"))
    p.add_argument("--include-patient", action="store_true",
                   help="also write PatientID, sex, age and dates (default: only a keyed hash of PatientID)")
    p.add_argument("--rebuild", action="store_true", help="re-read every file (default: only new or changed ones)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _options.add_remote_options(p)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    if os.path.isdir(args.out) or not args.out.lower().endswith((".parquet", ".csv")):
        args.parser.error(f"argument -o/--out: {args.out}: give a *.parquet or *.csv file to write")
    with _options.client_for(args) as client:
        report = build_index(args.root, args.out, workers=args.workers, progress=not args.quiet,
                             include_patient=args.include_patient, rebuild=args.rebuild,
                             storage_options=args.storage_options, client=client, shard_size=args.shard_size)
    print(f"index: {report.rows} rows ({report.read} read, {report.reused} unchanged, {report.errors} unreadable, "
          f"{report.skipped} non-DICOM files skipped) -> {report.path}")
    return 0
