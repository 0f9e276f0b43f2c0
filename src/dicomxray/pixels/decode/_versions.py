"""The installed versions of the distributions a backend declares (they enter every cache key)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

__all__ = ["dist_versions"]


def dist_versions(dists: Iterable[str]) -> dict[str, str]:
    """The installed version of each distribution (``"-"`` when it is not installed)."""
    out: dict[str, str] = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "-"
    return out
