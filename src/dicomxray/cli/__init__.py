"""``dicomxray`` command line: export, info, doctor, cache, index, preview, bench, demo.

One module per command; each registers its sub-parser and runs through the
same public pipeline and configs as the Python API.  Ordinary errors (a bad
file, a missing folder, a closed pipe) end with a message and a status, never
a traceback; a bad argument is a usage error (status 2) naming it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import DicomXrayError
from . import bench, cache, demo, doctor, export, index, info, preview

__all__ = ["build_parser", "main"]

_COMMANDS = (export, info, doctor, index, cache, preview, bench, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dicomxray", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dicomxray {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``main(["export", "in/", "out/"]) -> exit code``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DicomXrayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `dicomxray info x.dcm | head`: the reader left, nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
