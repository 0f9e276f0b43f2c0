"""DICOM bytes to tags, never pixels.

* is this a DICOM? :func:`~dicomxray.dicom.sniff.sniff` (one rule: ``DICM`` at byte 128, or a bare data set whose
  first elements are plausible), for discovery, the header and the index alike;
* DICOMDIR: :mod:`~dicomxray.dicom.dicomdir`, one reader and one reference filter (nothing outside the root, links
  included) for folders and URL prefixes;
* which files? :func:`~dicomxray.dicom.sources.find_sources` for a user's root (a folder or a URL prefix,
  classified once), over :func:`~dicomxray.dicom.discover.discover` and
  :func:`~dicomxray.dicom.discover_url.discover_url`, which count every entry they pass over by kind;
* how many elements may a file hold? :data:`~dicomxray.dicom.elements.MAX_ELEMENTS` and
  :data:`~dicomxray.dicom.elements.MAX_SEQUENCE_ITEMS`, checked before pydicom parses anything;
* would the pipeline refuse these pixels? :func:`~dicomxray.dicom.refusal.pixel_tags_refusal`, which the header
  raises and the index records;
* the header (:mod:`~dicomxray.dicom.header`) and the display-tag model (:mod:`~dicomxray.dicom.display`).
"""
