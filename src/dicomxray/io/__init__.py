"""Bytes in and out: the lowest layer, and the one home of four questions.

* local or URL? :func:`~dicomxray.io.source.locate` (and :meth:`~dicomxray.io.source.Opener.locate`, which carries
  storage options and listed identities): every read goes through it, classified once;
* is this input unchanged? :meth:`~dicomxray.io.identity.FileIdentity.token`: the cache key, the export stamp, the
  Dask manifest and the incremental index all compare it;
* which error is this? :func:`~dicomxray.io.translate.translate` maps OS, fsspec, botocore and aiohttp exceptions
  onto the error tree, and :func:`~dicomxray.io.translate.missing_extra` names the pip extra a feature needs;
* may an output go there? :func:`~dicomxray.io.paths.safe_output_path` keeps every name derived from a source
  inside its destination.

Files are written atomically by :func:`~dicomxray.io.atomic.atomic_write` (temporary file, then rename).
"""
