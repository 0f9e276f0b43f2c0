"""Work over many files: a process pool or a Dask cluster, and the two jobs built on them.

* :func:`export_folder`: a folder (or URL prefix) to PNG/JPEG files, mirrored, each stamped with its
  source's identity so a re-run writes only what changed.
* :func:`build_cache`: fill an :class:`~dicomxray.XrayCache` ahead of training.
* :func:`connect`: a Dask client for ``local:N``, ``tcp://host:port`` or a scheduler file.
"""

from __future__ import annotations

from .distributed import connect
from .tasks import ExportResult, build_cache, export_folder, run_jobs

__all__ = ["ExportResult", "build_cache", "connect", "export_folder", "run_jobs"]
