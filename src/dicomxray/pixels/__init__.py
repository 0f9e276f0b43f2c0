"""Stored values to the array you train on: what the cache's code fingerprint covers.

The decoder registry (:mod:`~dicomxray.pixels.decode`, one file per backend, the thread policy in ``_threads``),
the display chain folded into one table (:mod:`~dicomxray.pixels.render`), the resize and box mapping
(:mod:`~dicomxray.pixels.geometry`), the :class:`~dicomxray.pixels.pipeline.Pipeline` with ``read_xray`` /
``load_xray``, and :func:`~dicomxray.pixels.fingerprint.code_fingerprint`.
"""
