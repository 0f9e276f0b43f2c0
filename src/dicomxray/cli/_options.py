"""Argument types and the pipeline options every command shares, built into the same configs as the API.

Every type refuses a bad value before any work starts (argparse prints a usage
error naming the argument and exits with status 2).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from ..config import DecodeConfig, PipelineConfig, RenderConfig, pipeline_config

#: Largest output side accepted: 4x the largest radiographs; --size 100000 once ran out of memory.
MAX_SIZE = 16384


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high if high is not None else 'inf'}")
        return value

    parse.__name__ = "integer"
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def shard(text: str) -> tuple[int, int]:
    """``k/n``: the k-th of n shards, 1 <= k <= n (e.g. ``$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``)."""
    k, sep, n = text.partition("/")
    try:
        kk, nn = int(k), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not k/n (two integers, e.g. 1/4)") from None
    if not sep or nn < 1 or not 1 <= kk <= nn:
        raise argparse.ArgumentTypeError(f"{text!r}: need 1 <= k <= n")
    return kk, nn


size = bounded_int(1, MAX_SIZE)
workers = bounded_int(0, 1024)
#: ``--workers``'s help: the default is :func:`dicomxray.jobs.pool.worker_count`'s (``None`` here).
WORKERS_HELP = "worker processes (default: the cores this process may use, CPU affinity and cgroup quota; " \
               "0 or 1: in this process)"


def add_pipeline_options(p: argparse.ArgumentParser, *, size_default: int | None = None) -> None:
    """The options that build a :class:`PipelineConfig`: the same in every command."""
    g = p.add_argument_group("pipeline options (the same as read_xray / DicomXrayDataset)")
    g.add_argument("--size", type=size, default=size_default,
                   help=f"output size 1..{MAX_SIZE}: square side, or longest side with --keep-ratio "
                        f"(default: {size_default or 'full resolution'})")
    geo = g.add_mutually_exclusive_group()
    geo.add_argument("--keep-ratio", action="store_true", help="keep the aspect ratio (longest side = --size)")
    geo.add_argument("--letterbox", action="store_true", help="keep the aspect ratio and pad to size x size")
    g.add_argument("--dtype", choices=["uint8", "uint16", "float32"], default=None, help="output type (default: uint8)")
    g.add_argument("--normalize", choices=["minmax", "window", "percentile"], default=None,
                   help="intensity normalization (default: minmax, like the classic recipe)")
    g.add_argument("--no-voi", action="store_true", help="do not apply the VOI LUT / window (default: apply it)")
    g.add_argument("--frame", type=bounded_int(0), default=None, help="frame of a multi-frame file (default: 0)")
    g.add_argument("--reduced-resolution", action="store_true",
                   help="decode JPEG 2000 / HTJ2K at a reduced resolution level when the output is small "
                        "(faster, changes the image slightly; needs --normalize window or percentile; default: off)")


def config_from(args: argparse.Namespace) -> PipelineConfig:
    """The :class:`PipelineConfig` the pipeline options describe."""
    try:
        base = PipelineConfig(render=RenderConfig(voi=not args.no_voi, normalize=args.normalize or "minmax"),
                              decode=DecodeConfig(reduced_resolution=args.reduced_resolution))
    except ValueError as exc:  # --reduced-resolution without --normalize window/percentile: say why, no traceback
        raise SystemExit(f"dicomxray: error: {exc}") from None
    return pipeline_config(base, size=args.size, keep_ratio=args.keep_ratio, letterbox=args.letterbox,
                           dtype=args.dtype, normalize=args.normalize, frame=args.frame)


def storage_options(text: str) -> dict[str, Any]:
    """``--storage-options``: a JSON object, or ``@file.json`` (keeps credentials out of the shell history)."""
    try:
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as fh:
                value = json.load(fh)
        else:
            value = json.loads(text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text[1:]}: {exc.strerror}") from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"anon\": true}'")
    return value


def scheduler(text: str) -> str:
    """``--scheduler``: ``local:N`` or a Dask scheduler address / scheduler file."""
    if text.startswith("local:"):
        n = text.partition(":")[2]
        if not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: local:N needs N >= 1 worker processes")
    elif "://" not in text and not text.endswith(".json"):
        raise argparse.ArgumentTypeError(f"{text!r}: give tcp://HOST:PORT, local:N or a scheduler file (*.json)")
    return text


def add_remote_options(p: argparse.ArgumentParser, *, cluster: bool = True) -> None:
    """``--storage-options`` for URL sources and, with ``cluster``, ``--scheduler``/``--shard-size`` for Dask."""
    g = p.add_argument_group("remote data and clusters")
    g.add_argument("--storage-options", type=storage_options, default=None, metavar="JSON",
                   help="fsspec options for s3:// gs:// az:// https:// sources, as JSON or @file.json "
                        "(e.g. '{\"anon\": true}' or '{\"client_kwargs\": {\"endpoint_url\": \"http://...\"}}')")
    if cluster:
        g.add_argument("--scheduler", type=scheduler, default=None,
                       help="run on Dask: tcp://HOST:8786 (a running scheduler), a scheduler file, or local:N "
                            "(a LocalCluster of N processes here); default: no Dask")
        g.add_argument("--shard-size", type=bounded_int(1, 100_000), default=256,
                       help="files per Dask task (with --scheduler)")


@contextmanager
def client_for(args: argparse.Namespace) -> Iterator[Any]:
    """The Dask client ``--scheduler`` names (``None`` without it), closed on exit."""
    if getattr(args, "scheduler", None) is None:
        with nullcontext(None) as none:
            yield none
        return
    from ..jobs.distributed import connect

    with connect(args.scheduler) as client:
        yield client
