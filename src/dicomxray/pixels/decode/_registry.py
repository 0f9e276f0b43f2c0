"""The decoder registry: transfer syntax -> ordered backends, open to backends from outside the package.

The registry is data: for each transfer syntax, the names of the backends that may decode it, in
order of preference.  The built-in order (:data:`BUILTIN_ORDER`) is the one measured fastest
(``benchmarks/bench_backends.py``): imagecodecs (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH, libjxl)
first; Pillow's OpenJPEG for JPEG 2000 (it can drop resolution levels); pydicom's own plugins last.
GDCM is never chosen: it is slow to hand buffers back and can ``abort()`` the process on hostile
JPEG-LS data.

:func:`register_backend` adds a backend (any object implementing :class:`Backend`) for the syntaxes it
declares, after the built-ins or, with ``first=True``, ahead of them.  Installed plugins are found
through the ``dicomxray.decoders`` entry-point group, loaded the first time the registry is used in
a process, so DataLoader workers, process pools and Dask workers see them as the parent does.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ...dicom.syntaxes import ENCAPSULATED, J2K, NATIVE
from ...errors import DecoderWarning
from . import imagecodecs_backend, native, pillow_backend, pydicom_backend
from ._versions import dist_versions

if TYPE_CHECKING:
    import numpy as np

    from ...dicom.format import PixelFormat

__all__ = ["BACKENDS", "BUILTIN_ORDER", "ENTRY_POINT_GROUP", "Backend", "backend_named", "backends_for",
           "check_backend_name", "dist_versions", "register_backend", "registry_generation", "registry_versions",
           "unregister_backend"]

#: The entry-point group installed decoder plugins declare themselves in (``pyproject.toml``:
#: ``[project.entry-points."dicomxray.decoders"] mycodec = "mypackage.decoder:BACKEND"``).
ENTRY_POINT_GROUP = "dicomxray.decoders"


@runtime_checkable
class Backend(Protocol):
    """What a decoder backend declares and does (see the pixels guide, "Writing a decoder plugin").

    A backend gets a frame's *bytes* (already checked by the codestream guards) plus a
    :class:`~dicomxray.dicom.format.PixelFormat`, never a pydicom Dataset.  When it cannot decode a
    stream it declared (a feature, bit depth or variant it lacks) it raises
    :class:`~dicomxray.errors.DecoderUnavailableError` and the next backend for the syntax is tried; any
    other exception means the data was rejected, which is final (a second decoder may return garbage
    for corrupt JPEG 2000, which has no checksum).
    """

    @property
    def name(self) -> str:
        """What users pass as ``DecodeConfig(backend=...)``."""
        ...

    @property
    def packages(self) -> tuple[str, ...]:
        """The pip packages it needs, named in errors when missing."""
        ...

    @property
    def syntaxes(self) -> AbstractSet[str]:
        """The transfer syntax UIDs it decodes."""
        ...

    @property
    def threaded(self) -> AbstractSet[str]:
        """The transfer syntax UIDs for which it honours ``threads`` (see :mod:`._threads`)."""
        ...

    def is_available(self, syntax: str) -> bool:
        """Whether what it needs for ``syntax`` is installed here."""
        ...

    def missing_packages(self, syntax: str) -> list[str]:
        """The pip packages that would make ``syntax`` decodable by it."""
        ...

    def versions(self) -> dict[str, str]:
        """The installed version of every distribution its decoding depends on (``"-"`` when absent):
        they enter every cache key, so a codec upgrade is never served stale entries."""
        ...

    def max_reduce(self, fmt: PixelFormat, data: bytes | memoryview) -> int:
        """How many resolution levels it can drop when decoding this frame (0: none)."""
        ...

    def decode(self, data: bytes | memoryview, fmt: PixelFormat, reduce: int, threads: int = 1) -> tuple[np.ndarray, int]:
        """The frame's samples (2-D integers) at ``2**-r`` resolution, and ``r`` (``r <= reduce``), with up to
        ``threads`` threads where the codec can use them (the same samples whatever the count)."""
        ...


#: Transfer syntax family -> built-in backend names, fastest first.  The first family holding a syntax
#: wins; a syntax in none of them goes to pydicom, which may know it.
BUILTIN_ORDER: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (NATIVE, ("numpy",)),
    (J2K, ("imagecodecs", "pillow", "pydicom")),
    (ENCAPSULATED, ("imagecodecs", "pydicom")),
)
_BUILTINS = (native.BACKEND, imagecodecs_backend.BACKEND, pillow_backend.BACKEND, pydicom_backend.BACKEND)


class _Registry:
    """Backends by name and, per syntax, their order; ``generation`` counts the changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.backends: dict[str, Backend] = {b.name: b for b in _BUILTINS}
        self.order: dict[str, list[str]] = {}
        for family, names in reversed(BUILTIN_ORDER):  # the first family holding a syntax wins
            for syntax in family:
                self.order[syntax] = list(names)
        self.builtin = frozenset(self.backends)
        self.generation = 0
        self.plugins_loaded = False
        self.loading = False

    def ensure_plugins(self) -> None:
        if self.plugins_loaded:
            return
        with self.lock:  # other threads wait here until every plugin is in
            if self.plugins_loaded or self.loading:  # loading: a plugin's import calls register_backend itself
                return
            self.loading = True
            try:
                for ep in entry_points(group=ENTRY_POINT_GROUP):
                    try:
                        obj = ep.load()
                        backend = obj() if isinstance(obj, type) else obj
                        self.add(backend, first=bool(getattr(backend, "first", False)), replace=True)
                    except Exception as exc:  # a broken plugin must not take the built-ins down with it
                        warnings.warn(f"decoder plugin {ep.name!r} ({ep.value}) was not registered: "
                                      f"{type(exc).__name__}: {exc}", DecoderWarning, stacklevel=4)
            finally:
                self.plugins_loaded, self.loading = True, False

    def add(self, backend: Backend, *, first: bool, replace: bool = False) -> None:
        _check_backend(backend)
        name = backend.name
        with self.lock:
            old = self.backends.get(name)
            if name in self.builtin and old is not backend:
                raise ValueError(f"{name!r} is a built-in decoder backend: choose another name")
            if old is not None and old is not backend and not replace:
                raise ValueError(f"a decoder backend named {name!r} is already registered; "
                                 f"unregister_backend({name!r}) first")
            self.remove(name)
            self.backends[name] = backend
            for syntax in backend.syntaxes:
                names = self.order.setdefault(syntax, ["pydicom"] if syntax not in NATIVE else [])
                if first:
                    names.insert(0, name)
                else:
                    names.append(name)
            self.generation += 1

    def remove(self, name: str) -> None:
        with self.lock:
            if self.backends.pop(name, None) is None:
                return
            for names in self.order.values():
                while name in names:
                    names.remove(name)
            self.generation += 1


def _check_backend(backend: object) -> None:
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a decoder backend needs a non-empty str name, got {name!r}")
    if not isinstance(backend, Backend):
        missing = [a for a in ("packages", "syntaxes", "threaded", "is_available", "missing_packages", "versions",
                               "max_reduce", "decode") if not hasattr(backend, a)]
        raise TypeError(f"decoder backend {name!r} does not implement the Backend protocol (missing: "
                        f"{', '.join(missing)})")
    syntaxes = backend.syntaxes
    if isinstance(syntaxes, str) or not syntaxes or not all(isinstance(s, str) for s in syntaxes):
        raise TypeError(f"decoder backend {name!r} must declare a non-empty set of transfer syntax UIDs")


_REGISTRY = _Registry()


class _BackendView(Mapping[str, Backend]):
    """Every registered backend by name (a live, read-only view; installed plugins included)."""

    def __getitem__(self, name: str) -> Backend:
        _REGISTRY.ensure_plugins()
        return _REGISTRY.backends[name]

    def __iter__(self) -> Iterator[str]:
        _REGISTRY.ensure_plugins()
        return iter(list(_REGISTRY.backends))

    def __len__(self) -> int:
        _REGISTRY.ensure_plugins()
        return len(_REGISTRY.backends)

    def __repr__(self) -> str:
        return f"BACKENDS({sorted(self)})"


#: Every registered backend by name; :func:`backends_for` orders them per syntax.
BACKENDS: Mapping[str, Backend] = _BackendView()


def register_backend(backend: Backend, *, first: bool = False) -> None:
    """Register a decoder backend for the transfer syntaxes it declares.

    Parameters
    ----------
    backend : Backend
        An object implementing :class:`Backend`; its ``name`` becomes a valid ``DecodeConfig(backend=)``.
    first : bool
        Put it ahead of the built-in backends for its syntaxes (default: after them, so it decodes
        what they cannot, or what a user forces it for).

    Registering the same object again is a no-op apart from its place; another object under a name
    already registered is refused (``unregister_backend`` it first).  A backend registered at run time
    is known to this process and to the processes it forks; a backend installed with an entry point
    (group ``dicomxray.decoders``) is known to every process.  The code fingerprint in every cache key
    is recomputed with the backend's versions.
    """
    _REGISTRY.ensure_plugins()
    _REGISTRY.add(backend, first=first)


def unregister_backend(name: str) -> None:
    """Remove a backend registered with :func:`register_backend` (the built-ins cannot be removed)."""
    if name in _REGISTRY.builtin:
        raise ValueError(f"{name!r} is a built-in decoder backend and cannot be removed")
    _REGISTRY.ensure_plugins()
    if name not in _REGISTRY.backends:
        raise KeyError(f"no decoder backend named {name!r} is registered")
    _REGISTRY.remove(name)


def backends_for(syntax: str) -> tuple[str, ...]:
    """Names of the backends that may decode ``syntax``, in order of preference."""
    _REGISTRY.ensure_plugins()
    names = _REGISTRY.order.get(syntax)
    return tuple(names) if names is not None else ("pydicom",)


def backend_named(name: str) -> Backend:
    """The registered backend called ``name``; ``ValueError`` naming the registered ones otherwise."""
    check_backend_name(name)
    return _REGISTRY.backends[name]


def check_backend_name(name: str | None) -> None:
    """``ValueError`` unless ``name`` is ``None`` or a registered backend (the ``DecodeConfig(backend=)`` check)."""
    _REGISTRY.ensure_plugins()
    if name is not None and name not in _REGISTRY.backends:
        raise ValueError(f"backend must be one of {sorted(_REGISTRY.backends)} (the registered decoder "
                         f"backends), got {name!r}")


def registry_versions() -> tuple[int, tuple[str, ...]]:
    """The registry's generation and, per backend in registration order, ``name:dist=version`` for every
    distribution it declares, plus each syntax's order: what the code fingerprint hashes."""
    _REGISTRY.ensure_plugins()
    with _REGISTRY.lock:
        items = [f"{n}:{d}={v}" for n, b in _REGISTRY.backends.items() for d, v in sorted(b.versions().items())]
        items += [f"{s}>{','.join(names)}" for s, names in sorted(_REGISTRY.order.items())]
        return _REGISTRY.generation, tuple(items)


def registry_generation() -> int:
    """Changes every time a backend is registered or removed."""
    _REGISTRY.ensure_plugins()
    return _REGISTRY.generation
