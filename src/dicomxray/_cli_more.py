"""CLI commands beyond the core: cache, preview, demo, bench (registered into the parser)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dicomxray as dx


def _labels_for(root: Path) -> tuple[Path, Any]:
    """A SIIM-COVID folder (CSVs beside ``train/``) gets its labels; any other folder none."""
    from dicomxray.labels import SiimCovid

    if (root / "train_image_level.csv").exists() and (root / "train").is_dir():
        return root / "train", SiimCovid(root)
    if (root.parent / "train_image_level.csv").exists():
        return root, SiimCovid(root.parent)
    return root, None


def cmd_cache(args: argparse.Namespace, config: Callable[[argparse.Namespace], Any]) -> int:
    cache = dx.XrayCache(args.cache_dir, identity=getattr(args, "identity", "stat"))
    if args.action == "verify":
        counts = cache.verify(remove=not args.keep)
        removed = " (removed)" if counts["corrupt"] and not args.keep else ""
        print(f"cache verify: {counts['ok']} ok, {counts['corrupt']} corrupt{removed}")
        return 1 if counts["corrupt"] else 0
    if args.action == "prune":
        counts = cache.prune(older_than_days=args.older_than)
        print(f"cache prune: {counts['removed']} removed, {counts['kept']} kept, "
              f"{counts['temp_removed']} abandoned temporary files removed")
        return 0
    k, _, n = args.shard.partition("/")
    files = [str(p) for p in dx.find_dicoms(args.root)]
    results = dx.build_cache(files, args.cache_dir, config=config(args), identity=args.identity,
                             shard=(int(k), int(n or 1)), workers=args.workers, progress=not args.quiet)
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed")}
    print(f"cache build: {counts['written']} written, {counts['skipped']} already cached, {counts['failed']} failed")
    for r in results:
        if r.status == "failed":
            print(f"  failed: {r.error}", file=sys.stderr)
    return 1 if counts["failed"] else 0


def cmd_preview(args: argparse.Namespace, config: Callable[[argparse.Namespace], Any]) -> int:
    from dicomxray.dataset import DicomXrayDataset
    from dicomxray.labels import SIIM_STUDY_CLASSES
    from dicomxray.preview import preview_grid

    root, labels = _labels_for(Path(args.root))
    transform = None
    if args.augment:
        from dicomxray.transforms import train_transforms

        transform = train_transforms(args.size or 512)
    ds = DicomXrayDataset(root, labels=labels, size=args.size or 512, letterbox=args.letterbox,
                             transform=transform, on_error="skip")
    out = preview_grid(ds, args.out, count=args.count, cols=args.cols,
                       class_names=SIIM_STUDY_CLASSES if labels is not None else None)
    print(f"preview: {out}")
    return 0


def cmd_demo(args: argparse.Namespace, config: Callable[[argparse.Namespace], Any]) -> int:
    from dicomxray.demo import run_demo

    run_demo(args.out, studies=args.studies, size=args.size or 512, workers=args.workers)
    return 0


def cmd_bench(args: argparse.Namespace, config: Callable[[argparse.Namespace], Any]) -> int:
    from dicomxray.bench import bench_folder

    bench_folder(args.root, size=args.size or 512, limit=args.limit, repeat=args.repeat, out=args.out)
    return 0


def register(sub: Any, add_pipeline_options: Callable[[argparse.ArgumentParser], None],
             config: Callable[[argparse.Namespace], Any]) -> None:
    """Add the cache/preview/demo/bench sub-commands."""
    p = sub.add_parser("cache", help="build, verify or prune the on-disk cache")
    p.add_argument("action", choices=["build", "verify", "prune"])
    p.add_argument("root", nargs="?", help="DICOM folder (build)")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--shard", default="0/1", help="k/n: build only files[k::n] (spread a build over jobs)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--identity", choices=["stat", "content"], default="stat")
    p.add_argument("--older-than", type=float, default=None, help="prune: also drop entries older than N days")
    p.add_argument("--keep", action="store_true", help="verify: report corrupt entries without removing them")
    p.add_argument("--quiet", action="store_true")
    add_pipeline_options(p)
    p.set_defaults(func=lambda a: _need_root(a) or cmd_cache(a, config))

    p = sub.add_parser("preview", help="a PNG grid of samples with their boxes")
    p.add_argument("root", help="a DICOM folder, or a SIIM-COVID folder (train/ + CSVs) to draw its boxes")
    p.add_argument("--out", default="preview.png")
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--augment", action="store_true", help="show train_transforms output")
    add_pipeline_options(p)
    p.set_defaults(func=lambda a: cmd_preview(a, config))

    p = sub.add_parser("demo", help="generate a synthetic SIIM folder, cache it, train-load it, preview it")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--studies", type=int, default=32)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--workers", type=int, default=0)
    p.set_defaults(func=lambda a: cmd_demo(a, config))

    p = sub.add_parser("bench", help="read_xray against the classic recipe on your own files")
    p.add_argument("root")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--limit", type=int, default=20, help="at most this many files")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.set_defaults(func=lambda a: cmd_bench(a, config))


def _need_root(args: argparse.Namespace) -> int:
    if args.action == "build" and not args.root:
        print("error: cache build needs a DICOM folder", file=sys.stderr)
        return 2
    return 0
