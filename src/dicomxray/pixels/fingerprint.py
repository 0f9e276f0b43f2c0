"""The code fingerprint: what every cache key holds so that a change to the pixel-shaping code is never stale.

The code that shapes a pixel is the pipeline and everything of the package it imports, but the I/O
layer and the errors: the header and display-tag model, the decoders, the renderer, the geometry and
the configs.  Editing the dataset, the jobs or the index keeps every cache entry.
"""

from __future__ import annotations

import hashlib
import re
import threading
from functools import cache
from pathlib import Path

from .decode import registry_generation, registry_versions

__all__ = ["code_fingerprint", "pixel_modules"]

#: Where the pixel-shaping code starts: the fingerprint covers this module and every module of the
#: package it imports (transitively), but ``io`` (bytes in and out) and ``errors``.
_PIXEL_ROOT = "pixels/pipeline.py"
_NOT_PIXELS = ("io/", "errors.py")
_RELATIVE_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)", re.M)


@cache
def pixel_modules() -> list[Path]:
    """The package's source files that shape a pixel: the pipeline and its imports within the package.

    Found from the source's own ``import`` statements, so an edit to the dataset, the jobs or the index
    (which never shape a pixel) keeps every cache entry, while an edit to the header, the display-tag
    model, a decoder, the renderer or the geometry changes every key.
    """
    package = Path(__file__).resolve().parent.parent
    seen: set[Path] = set()
    todo = [package / _PIXEL_ROOT, package / "config.py", Path(__file__).resolve()]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        # Text, not ``ast``: CPython 3.11's parser is not safe to run from several threads at once.
        for dots, module, names in _RELATIVE_IMPORT.findall(path.read_text(encoding="utf-8")):
            base = path.parent
            for _ in range(len(dots) - 1):
                base = base.parent
            stem = base.joinpath(*module.split(".")) if module else base
            leaves = [n.split(" as ")[0].strip() for n in names.strip("()").replace("\n", " ").split(",")]
            for target in [stem] + [stem / leaf for leaf in leaves if leaf]:
                todo.extend((target.with_suffix(".py"), target / "__init__.py"))
    chosen = [p for p in seen if not p.relative_to(package).as_posix().startswith(_NOT_PIXELS)]
    return sorted(chosen)


@cache
def _source_digest() -> bytes:
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in pixel_modules():
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.digest()


_lock = threading.Lock()
_by_generation: dict[int, str] = {}


def code_fingerprint() -> str:
    """SHA-256 of the pixel-shaping source code (:func:`pixel_modules`) and of the decoder registry: every
    backend's declared distribution versions and each syntax's backend order.

    An edit to the rendering code in an editable install, a codec upgrade or a newly registered backend
    changes every key: the versions come from the backends themselves (:meth:`Backend.versions`), so no
    hand-kept list of modules or version numbers can forget one.  Recomputed whenever a backend is
    registered or removed.
    """
    with _lock:
        cached = _by_generation.get(registry_generation())
    if cached is not None:
        return cached
    generation, items = registry_versions()
    h = hashlib.sha256(_source_digest())
    for item in items:
        h.update(item.encode() + b"\0")
    digest = h.hexdigest()[:24]
    with _lock:
        _by_generation[generation] = digest
    return digest
