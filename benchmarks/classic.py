"""The classic recipe baseline lives in the package (``dicomxray bench`` uses it too)."""

from dicomxray.bench import classic_read_xray

__all__ = ["classic_read_xray"]
