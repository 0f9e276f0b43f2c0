"""On-disk cache of rendered, resized arrays: never stale, safe under concurrency.

Key = the source's identity (path, size, mtime, ctime and inode; or a SHA-256 of its bytes) + the pipeline's
config fingerprint + a fingerprint of the pipeline's own code and codec versions.  Editing or replacing a DICOM
file (even by ``cp -p``: same size and mtime, new inode and ctime), any option or the rendering code gives a new key.

Each entry is one file ``<key[:2]>/<key>.dxc``, read in one place (:func:`_read_head`)::

    b"DXC1" | u32 header length | JSON header (shape, dtype, meta, crc32) | pad to 64 | array bytes

Entries are written to a temporary file in the same directory and renamed into place (``os.replace`` is
atomic), so readers see a complete entry or none, whatever the number of writers (DataLoader workers, DDP ranks)
or a ``kill -9`` mid-write.  A hit reads the pixels with one ``preadv`` into memory of its own: no descriptor or
map stays open, so a warm epoch over any number of files never runs out of descriptors, and nothing a caller
writes into a sample reaches the entry.  An entry that fails its checks (magic, header, size; the CRC-32 of the
pixels in ``verify()`` / ``dicomxray cache verify``, and on every read with ``check_crc=True``) is deleted,
recomputed and reported with a warning, never served.

A full or read-only disk turns caching off with one warning and training goes on (``strict=True`` raises
:class:`CacheError`; a cache build reports once for the build, see :meth:`XrayCache.fill`); no partial entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import sys
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from .config import CacheConfig, CacheIdentity, PipelineConfig
from .dicom.header import max_file_bytes
from .errors import CacheError, CacheWarning
from .io.atomic import atomic_write
from .io.source import FileIdentity, Location, Opener, file_identity, locate
from .pixels.fingerprint import code_fingerprint
from .pixels.pipeline import Pipeline, XrayImage, XrayMeta

__all__ = ["CacheStats", "CachedPipeline", "FillOutcome", "XrayCache", "code_fingerprint"]

#: What :meth:`XrayCache.fill` did: served an entry, wrote one, could not (:attr:`XrayCache.write_error`), or
#: rendered a source that changed meanwhile.
FillOutcome = Literal["hit", "written", "unwritten", "changed"]

_MAGIC = b"DXC1"
_ALIGN = 64
_SUFFIX = ".dxc"
_MAX_OPENED = 50_000  # parsed headers and keys remembered per process at most


@dataclass(frozen=True)
class _Entry:
    """Where an entry's pixels lie, and its metadata: parsed once per process."""

    start: int
    size: int
    dtype: np.dtype
    shape: tuple[int, ...]
    crc: int
    meta: XrayMeta


@dataclass
class CacheStats:
    """Counters of one :class:`XrayCache` object (per process)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    corrupt: int = 0
    write_errors: int = 0


class XrayCache:
    """A directory of rendered arrays keyed by source identity + configuration + pipeline code.

    Parameters
    ----------
    directory : path-like or CacheConfig
        Created if missing.  Many processes may share it.  A :class:`CacheConfig`
        carries the other options too.
    identity, strict, check_crc
        See :class:`dicomxray.CacheConfig`.
    warn_write_errors : bool
        Warn when a write fails and caching turns off (default); ``False``: the caller reports :attr:`write_error`.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | CacheConfig, *, identity: CacheIdentity = "stat",
        strict: bool = False, check_crc: bool = False, warn_write_errors: bool = True,
    ) -> None:
        if not isinstance(directory, CacheConfig):
            directory = CacheConfig(directory=os.fspath(directory), identity=identity, strict=strict,
                                    check_crc=check_crc)
        self.config = directory
        self.directory = Path(directory.directory)
        self.stats = CacheStats()
        self._warn_write_errors = warn_write_errors
        #: The first write the directory refused (caching is off for this object from then on), or ``None``.
        self.write_error: OSError | None = None
        # Parsed headers of the entries this process has read (a few hundred bytes each, no descriptor).
        self._entries: dict[str, _Entry] = {}
        self._keys: dict[tuple[FileIdentity, str], str] = {}

    identity = property(lambda self: self.config.identity)
    strict = property(lambda self: self.config.strict)
    check_crc = property(lambda self: self.config.check_crc)

    def __repr__(self) -> str:
        return f"XrayCache({self.config!r})"

    def __getstate__(self) -> dict[str, Any]:  # cheap to pickle into DataLoader workers
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])  # type: ignore[misc]

    # ------------------------------------------------------------------ keys
    def key(self, path: str | os.PathLike[str] | Location, config: PipelineConfig, *, opener: Opener | None = None) -> str:
        """The entry key for ``path`` rendered with ``config`` (content identity reads the file;
        ``opener`` carries a URL's storage options)."""
        opener = opener or Opener()
        where = opener.locate(path)
        if self.identity == "content":
            return self._key(opener.read(where, content_hash=True).identity, config)
        return self._key(opener.identity(where), config)

    def _key(self, ident: FileIdentity, config: PipelineConfig) -> str:
        fingerprint = config.fingerprint()
        key = self._keys.get((ident, fingerprint))  # a warm epoch: one stat, one dict lookup
        if key is None:
            blob = f"{ident.token(self.identity == 'content')}\0{fingerprint}\0{code_fingerprint()}".encode()
            key = hashlib.sha256(blob).hexdigest()[:40]
            if len(self._keys) >= _MAX_OPENED:
                self._keys.clear()
            self._keys[(ident, fingerprint)] = key
        return key

    def entry_path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    # ------------------------------------------------------------- read/write
    def get(self, path: str | os.PathLike[str] | Location, config: PipelineConfig, *, opener: Opener | None = None,
            out: np.ndarray | None = None) -> XrayImage | None:
        """The cached image, or ``None`` (a corrupt entry is removed and reported).  A hit is read into ``out``
        (one image of a batch's allocation, say) when it is C-contiguous of the entry's shape and dtype."""
        return self._lookup(self.key(path, config, opener=opener), out)

    def _lookup(self, key: str, out: np.ndarray | None = None) -> XrayImage | None:
        """The entry's image in memory of its own (no descriptor or map is kept open; nothing a caller
        writes reaches the entry), or ``None``.  The parsed header is remembered per process, so a hit
        costs one open, one ``fstat`` and one ``readinto`` of the pixels."""
        path = os.path.join(self.directory, key[:2], key + _SUFFIX)  # entry_path's, without pathlib's cost
        entry = self._entries.get(key)
        if entry is None:
            entry = self._parse(path)
            if entry is None:
                return None
            if len(self._entries) >= _MAX_OPENED:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = entry
        pixels = self._pixels(path, entry, out)
        if pixels is None:
            self._entries.pop(key, None)
            return None
        self.stats.hits += 1
        return XrayImage(pixels, entry.meta)

    def _parse(self, path: str | Path) -> _Entry | None:
        try:
            with open(path, "rb") as fh:
                header, start, size = _read_head(fh)
            return _Entry(start, size, np.dtype(header["dtype"]), header["shape"], int(header["crc32"]),
                          XrayMeta.from_dict(header["meta"]))
        except FileNotFoundError:
            return None
        except _BAD_ENTRY as exc:
            self._corrupt(path, exc)
            return None
        except OSError as exc:
            _warn(f"dicomxray cache: cannot open {path} ({exc}); reading the source instead")
            return None

    def _pixels(self, path: str | Path, entry: _Entry, out: np.ndarray | None = None) -> np.ndarray | None:
        fits = out is not None and out.shape == entry.shape and out.dtype == entry.dtype and out.flags.c_contiguous
        pixels = out if out is not None and fits else np.empty(entry.shape, entry.dtype)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if os.fstat(fd).st_size != entry.size:
                    raise ValueError("entry changed size since its header was read")
                got = os.preadv(fd, [pixels.data.cast("B")], entry.start)
            finally:
                os.close(fd)
            if got != pixels.nbytes:
                raise ValueError(f"read {got} of {pixels.nbytes} pixel bytes")
            if self.check_crc and zlib.crc32(pixels.data) != entry.crc:
                raise ValueError("pixel checksum mismatch")
        except FileNotFoundError:  # pruned or replaced meanwhile: a miss
            return None
        except ValueError as exc:
            self._corrupt(path, exc)
            return None
        except OSError as exc:
            _warn(f"dicomxray cache: cannot read {path} ({exc}); reading the source instead")
            return None
        return pixels

    def _corrupt(self, path: str | Path, exc: Exception) -> None:
        self.stats.corrupt += 1
        _warn(f"dicomxray cache: corrupt entry {path} ({exc}); recomputing it")
        _unlink(path)

    def load(self, path: str | os.PathLike[str], pipeline: Pipeline | PipelineConfig) -> XrayImage:
        """The cached image, or run ``pipeline`` on ``path``, store the result and return it.

        The source is read at most once: with ``identity="content"`` the bytes that
        were hashed for the key are the bytes decoded; with ``"stat"`` the identity
        of the one consistent read must equal the stat the key came from, or the
        result is returned but not stored (the file changed meanwhile).
        """
        return self._load(path, pipeline)[0]

    def fill(self, path: str | os.PathLike[str], pipeline: Pipeline | PipelineConfig) -> FillOutcome:
        """Make ``path``'s entry as :meth:`load` does and say what it took (:data:`FillOutcome`); nothing is
        decoded once a write failed (:attr:`write_error`)."""
        if self.write_error is not None:
            return "unwritten"
        return self._load(path, pipeline)[1]

    def _load(self, path: str | os.PathLike[str], pipeline: Pipeline | PipelineConfig) -> tuple[XrayImage, FillOutcome]:
        if isinstance(pipeline, PipelineConfig):
            pipeline = Pipeline(pipeline)
        config, opener = pipeline.config, pipeline.opener
        where = opener.locate(path)  # classified once: the identity and the read below reuse it
        if self.identity == "content":
            source = opener.read(where, max_bytes=max_file_bytes(config.decode.max_pixels), content_hash=True)
            ident = source.identity
        else:
            ident = opener.identity(where)  # a stat; for a URL its listed identity, or a HEAD
        key = self._key(ident, config)
        image = self._lookup(key)
        if image is not None:
            if image.meta.path != ident.path:  # content identity: the same bytes under another name
                image = dataclasses.replace(image, meta=dataclasses.replace(image.meta, path=ident.path))
            return image, "hit"
        self.stats.misses += 1
        image = pipeline.read(source if self.identity == "content" else where)
        if image.identity is None or not image.identity.same_stat(ident):
            return image, "changed"
        return image, self._write(self.entry_path(key), image, dataclasses.asdict(ident))

    def _write(self, entry: Path, image: XrayImage, source: dict[str, Any]) -> FillOutcome:
        if self.write_error is not None:
            return "unwritten"
        pixels = np.ascontiguousarray(image.pixels)
        header = {"shape": list(pixels.shape), "dtype": pixels.dtype.str, "crc32": zlib.crc32(pixels.data),
                  "meta": image.meta.to_dict(), "source": source, "code": code_fingerprint(), "created": time.time()}
        blob = json.dumps(header, separators=(",", ":")).encode()
        head = _MAGIC + struct.pack("<I", len(blob)) + blob
        head += b"\0" * (-len(head) % _ALIGN)
        try:
            with atomic_write(entry) as out:
                out.write(head)
                out.write(pixels.data)
            self.stats.writes += 1
            return "written"
        except OSError as exc:
            self.stats.write_errors += 1
            if self.strict:
                raise CacheError(f"{entry}: cannot write cache entry ({exc})", path=str(entry)) from exc
            self.write_error = exc
            if self._warn_write_errors:
                _warn(f"dicomxray cache: cannot write to {self.directory} ({exc}); caching is off for this "
                      "process, training continues from the source files")
            return "unwritten"

    # ------------------------------------------------------------ maintenance
    def entries(self) -> Iterator[Path]:
        """Every entry file (not temporary files)."""
        for sub in sorted(self.directory.iterdir()) if self.directory.is_dir() else []:
            if sub.is_dir():
                yield from sorted(sub.glob(f"*{_SUFFIX}"))

    def verify(self, *, remove: bool = True) -> dict[str, int]:
        """Check every entry (magic, header, size, CRC-32); remove bad ones. Returns counts."""
        counts = {"ok": 0, "corrupt": 0}
        for entry in self.entries():
            try:
                with open(entry, "rb") as fh:
                    header, _, _ = _read_head(fh)
                    pixels = fh.read()
                if zlib.crc32(pixels) != header["crc32"]:
                    raise ValueError("pixel checksum mismatch")
                counts["ok"] += 1
            except (*_BAD_ENTRY, OSError):
                counts["corrupt"] += 1
                if remove:
                    _unlink(entry)
        return counts

    def prune(self, *, older_than_days: float | None = None) -> dict[str, int]:
        """Remove entries whose source changed or vanished (stat identity), stale temporary files,
        and, with ``older_than_days``, entries older than that."""
        counts = {"kept": 0, "removed": 0, "temp_removed": 0}
        now = time.time()
        for tmp in self.directory.glob("*/.*.tmp"):  # nothing when the directory does not exist
            if now - tmp.stat().st_mtime > 3600:  # an abandoned write (killed process)
                _unlink(tmp)
                counts["temp_removed"] += 1
        for entry in self.entries():
            try:
                with open(entry, "rb") as fh:
                    header = _read_head(fh)[0]
                source = header["source"]
                stale = older_than_days is not None and now - header["created"] > older_than_days * 86400
                if locate(source["path"]).remote:
                    pass  # checking an object needs its storage options: kept unless older_than_days
                elif not stale and not source.get("sha256"):
                    stale = not file_identity(source["path"]).same_stat(FileIdentity(**source))
                elif not stale:
                    stale = not os.path.exists(source["path"])
            except (*_BAD_ENTRY, OSError):
                stale = True  # SourceFileNotFoundError is an OSError
            if stale:
                _unlink(entry)
                counts["removed"] += 1
            else:
                counts["kept"] += 1
        return counts


#: What a damaged entry raises while :func:`_read_head` reads it.
_BAD_ENTRY = (ValueError, KeyError, TypeError, struct.error)  # json.JSONDecodeError is a ValueError


def _read_head(fh: BinaryIO) -> tuple[dict[str, Any], int, int]:
    """THE reader of the entry format: ``(header, start of the pixels, file size)`` of the entry ``fh``, left at
    the pixels; one of :data:`_BAD_ENTRY` for a file that is not a whole entry (magic, header, size)."""
    size = os.fstat(fh.fileno()).st_size
    head = fh.read(8)
    if len(head) < 8 or head[:4] != _MAGIC:
        raise ValueError("bad magic" if head else "empty file")
    (n,) = struct.unpack("<I", head[4:8])
    if 8 + n > size:
        raise ValueError("header runs past the end")
    header = json.loads(fh.read(n))
    start = 8 + n + (-(8 + n) % _ALIGN)
    header["shape"] = tuple(int(v) for v in header["shape"])
    nbytes = np.dtype(header["dtype"]).itemsize * int(np.prod(header["shape"]))
    if start + nbytes != size:
        raise ValueError(f"size {size} does not match the header ({start + nbytes})")
    fh.seek(start)
    return header, start, size


def _warn(message: str) -> None:
    """A :class:`CacheWarning` attributed to the first caller outside this module, however deep it was raised."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, CacheWarning, stacklevel=level)


def _unlink(path: str | Path) -> None:
    """Remove a bad or abandoned entry; one already gone is fine, one that cannot be removed is reported."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        _warn(f"dicomxray cache: cannot remove {path} ({exc})")


class CachedPipeline:
    """A :class:`Pipeline` behind an :class:`XrayCache`: the same ``read(path)``, served from the cache."""

    def __init__(self, pipeline: Pipeline, cache: XrayCache) -> None:
        self.pipeline = pipeline
        self.cache = cache

    @property
    def config(self) -> PipelineConfig:
        return self.pipeline.config

    def __repr__(self) -> str:
        return f"CachedPipeline({self.pipeline!r}, {self.cache!r})"

    def read(self, path: str | os.PathLike[str]) -> XrayImage:
        return self.cache.load(path, self.pipeline)
