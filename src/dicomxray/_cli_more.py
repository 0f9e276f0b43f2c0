"""CLI commands beyond the core: cache, preview, bench (registered into the parser)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_pipeline_options: Callable[[argparse.ArgumentParser], None],
             config: Callable[[argparse.Namespace], Any]) -> None:
    """Add the cache/preview/bench sub-commands (filled in as those features land)."""
    return None
