"""``dicomxray cache build|verify|prune``: fill, check and tidy the on-disk cache."""

from __future__ import annotations

import argparse
import os
import sys

from ..cache import XrayCache
from ..config import TRAINING_SIZE, CacheConfig
from ..dicom.sources import find_sources
from ..jobs.tasks import build_cache
from . import _options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="build, verify or prune the on-disk cache",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("action", choices=["build", "verify", "prune"], help="what to do")
    p.add_argument("root", nargs="?", help="DICOM folder or URL prefix (build only)")
    p.add_argument("--cache-dir", required=True, help="the cache directory")
    p.add_argument("--shard", type=_options.shard, default=(1, 1),
                   help="k/n: build only the k-th of n shards, 1 <= k <= n (spread a build over array jobs)")
    p.add_argument("--workers", type=_options.workers, default=None, help=_options.WORKERS_HELP)
    p.add_argument("--identity", choices=["stat", "content"], default="stat",
                   help="identify sources by stat (path, size, mtime, ctime, inode) or by a hash of their content")
    p.add_argument("--older-than", type=_options.positive_float, default=None,
                   help="prune: also drop entries older than this many days")
    p.add_argument("--keep", action="store_true", help="verify: report corrupt entries without removing them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _options.add_remote_options(p)
    _options.add_pipeline_options(p, size_default=TRAINING_SIZE)
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    if args.action == "build" and not args.root:
        args.parser.error("cache build needs a DICOM folder (ROOT)")
    if args.action != "build" and not os.path.isdir(args.cache_dir):
        args.parser.error(f"argument --cache-dir: {args.cache_dir}: no such directory")
    config = CacheConfig(directory=args.cache_dir, identity=args.identity)
    if args.action == "verify":
        counts = XrayCache(config).verify(remove=not args.keep)
        removed = " (removed)" if counts["corrupt"] and not args.keep else ""
        print(f"cache verify: {counts['ok']} ok, {counts['corrupt']} corrupt{removed}")
        return 1 if counts["corrupt"] else 0
    if args.action == "prune":
        counts = XrayCache(config).prune(older_than_days=args.older_than)
        print(f"cache prune: {counts['removed']} removed, {counts['kept']} kept, "
              f"{counts['temp_removed']} abandoned temporary files removed")
        return 0
    found = find_sources(args.root, args.storage_options)
    files, listed = [str(f) for f in found.files], found.identities or None
    with _options.client_for(args) as client:
        results = build_cache(files, config, config=_options.config_from(args), shard=args.shard,
                              workers=args.workers, progress=not args.quiet, storage_options=args.storage_options,
                              listed=listed, client=client, shard_size=args.shard_size)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed", "unwritten")}
    unwritten = f", {counts['unwritten']} not written (see the warning)" if counts["unwritten"] else ""
    print(f"cache build: {counts['written']} written, {counts['skipped']} already cached, {counts['failed']} failed"
          f"{unwritten}")
    for r in results:
        if r.status == "failed":
            print(f"  failed: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] or counts["unwritten"] else 0
