"""Old spellings that keep working for one minor release, each with a ``DeprecationWarning`` naming the new one.

* modules moved in 0.3 (``dicomxray.dataset`` -> ``dicomxray.data`` ...): importing the old name gives the new
  module;
* parameters renamed or removed in 0.2 (``DicomXrayDataset(cache_dir=...)`` -> ``cache=``...): mapped onto the
  new ones by :func:`dataset_options`;
* ``make_config`` (0.1) -> :func:`dicomxray.pipeline_config`.

Everything here goes in the next minor release; ``CHANGELOG.md`` lists it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["MOVED_MODULES", "REMOVED_IN", "dataset_options", "install", "warn"]

#: The release that removes these spellings.
REMOVED_IN = "0.4"

#: Modules moved by the 0.3 reorganisation: old name -> new name.
MOVED_MODULES = {
    "dicomxray.dataset": "dicomxray.data.dataset",
    "dicomxray.prefetch": "dicomxray.data.prefetch",
    "dicomxray.pipeline": "dicomxray.pixels.pipeline",
    "dicomxray.decode": "dicomxray.pixels.decode",
    "dicomxray.distributed": "dicomxray.jobs.distributed",
}


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """One ``DeprecationWarning``: ``old`` is deprecated, use ``new``."""
    warnings.warn(f"{old} is deprecated and will be removed in dicomxray {REMOVED_IN}; use {new}",
                  DeprecationWarning, stacklevel=stacklevel)


def _importer_level() -> int:
    """The ``stacklevel`` of :func:`warn`, called from here, that names the line importing an old module.

    :func:`warnings.warn` counts levels past the import machinery's frames without counting them (a frame
    whose file names ``importlib`` and ``_bootstrap``), so the level is this file's frames plus one: the
    default filters then show the warning when the importing line is a script's (``__main__``), and it
    names that line wherever it is.
    """
    frame, level = sys._getframe(1), 2  # warn's caller (level 2 from inside warn): this file
    while frame.f_back is not None:
        frame = frame.f_back
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            continue  # skipped by warnings.warn, not counted
        if name != __file__ and name != importlib.__file__:  # importlib.import_module(old): its caller
            return level + 1
        level += 1
    return level


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module under its old name (the same module object, so ``isinstance`` checks hold)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warn(f"module {spec.name}", new, stacklevel=_importer_level())
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        return None


def install() -> None:
    """Put the old-module finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())  # before the path finder: a stale folder of the old name must not win


#: DicomXrayDataset parameters of 0.1 and what they became in 0.2.
_DATASET_RENAMED = {
    "cache_dir": "cache=",
    "cache_identity": "cache=CacheConfig(directory, identity=...)",
    "keep_ratio": "size= with config=pipeline_config(keep_ratio=True)",
    "letterbox": "size= with config=pipeline_config(letterbox=True)",
    "dtype": "config=pipeline_config(dtype=...)",
}


def dataset_options(old: dict[str, Any], *, config: Any, cache: Any, size: Any) -> tuple[Any, Any]:
    """``(config, cache)`` for a dataset given 0.1 parameters in ``old`` (each warned about once per call).

    Raises ``TypeError`` for a name that was never a parameter, as Python would.
    """
    unknown = sorted(set(old) - set(_DATASET_RENAMED))
    if unknown:
        raise TypeError(f"DicomXrayDataset() got an unexpected keyword argument {unknown[0]!r}")
    for name in old:
        warn(f"DicomXrayDataset({name}=...)", _DATASET_RENAMED[name], stacklevel=4)
    from .config import CacheConfig, pipeline_config

    shape = {k: old[k] for k in ("keep_ratio", "letterbox", "dtype") if k in old}
    if shape:
        config = pipeline_config(config, size=size, **shape)
    if "cache_dir" in old or "cache_identity" in old:
        if cache is not None:
            raise TypeError("give cache= or the deprecated cache_dir=/cache_identity=, not both")
        directory = old.get("cache_dir")
        if directory is None:
            raise TypeError("cache_identity= needs cache_dir= (better: cache=CacheConfig(directory, identity=...))")
        cache = CacheConfig(directory=directory, identity=old.get("cache_identity", "stat"))
    return config, cache
