"""What dicomxray's tests and benchmarks share, like ``numpy.testing``.

* Synthetic data: :func:`write_dicom` (any pixels, any encodable syntax, LUTs, windows), :func:`chest_phantom`
  (chest-film-like stored values), :func:`make_siim_dataset` (a SIIM-COVID-shaped folder) and
  :func:`write_siim_csvs` (its two CSVs for any images).
* Hostile files: :data:`MUTATIONS` and :func:`mutate`, mutations of valid files.
* Hardening runners, run with small counts by ``tests/test_hardening.py`` and with large ones by
  ``python -m benchmarks.stress``: :func:`fuzz_files` (crash-isolated fuzzing), :func:`fuzz_case`,
  :func:`fuzz_sources`, :func:`kill_cache_build_and_export`, :func:`kill_randomly`, :func:`share_one_cache`,
  :func:`memory_bomb`.
* Baselines: :func:`classic_read_xray` (the classic Kaggle recipe) and :func:`interleaved` (a timer).

For tests, benchmarks, examples and the ``demo``/``bench`` tooling only: the library itself never imports it.
Writing compressed syntaxes needs ``imagecodecs`` (a dependency of dicomxray).
"""

from __future__ import annotations

from ._classic import classic_read_xray
from ._fuzz import SURVIVED, Case, FuzzReport, fuzz_case, fuzz_files, fuzz_sources
from ._hostile import MUTATIONS, mutate
from ._stress import (
    BombReport,
    KillReport,
    ShareReport,
    kill_cache_build_and_export,
    kill_randomly,
    memory_bomb,
    share_one_cache,
)
from ._synth import ENCODABLE_SYNTAXES, SiimSynthSummary, chest_phantom, make_siim_dataset, write_dicom, write_siim_csvs
from ._timing import interleaved

__all__ = [
    "ENCODABLE_SYNTAXES",
    "MUTATIONS",
    "SURVIVED",
    "BombReport",
    "Case",
    "FuzzReport",
    "KillReport",
    "ShareReport",
    "SiimSynthSummary",
    "chest_phantom",
    "classic_read_xray",
    "fuzz_case",
    "fuzz_files",
    "fuzz_sources",
    "interleaved",
    "kill_cache_build_and_export",
    "kill_randomly",
    "make_siim_dataset",
    "memory_bomb",
    "mutate",
    "share_one_cache",
    "write_dicom",
    "write_siim_csvs",
]
