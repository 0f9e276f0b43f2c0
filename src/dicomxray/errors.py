"""The exception tree of dicomxray.

Every error the library raises on purpose derives from :class:`DicomXrayError`
and also from the closest builtin, so ``except ValueError`` keeps working::

    DicomXrayError (Exception)
    ├── NotDicomError (ValueError)              the file is not DICOM at all
    ├── MissingPixelDataError (ValueError)      no (7FE0,0010) Pixel Data
    ├── CorruptPixelDataError (ValueError)      truncated or undecodable pixels
    ├── UnsupportedImageError (ValueError)      photometric/bit depth we cannot render
    ├── ImageTooLargeError (ValueError)          declared size over the limit
    ├── DecoderUnavailableError (RuntimeError)  no installed backend for the syntax
    ├── CacheError (OSError)                    the cache directory cannot be used
    ├── SourceChangedError (RuntimeError)       the file kept changing while we read it
    ├── FrameIndexError (IndexError)            a frame past Number of Frames
    ├── LabelFormatError (ValueError)           a label CSV not in its competition's format
    ├── SourceReadError (OSError)               a file that exists cannot be read (permissions, I/O...)
    ├── SourceFileNotFoundError (FileNotFoundError) a file vanished or a root is empty (a 404 for a URL)
    ├── RemoteSourceError (OSError)             an object store failed (after retries), an unknown protocol
    │   └── RemoteAccessError (PermissionError) 401/403 or no credential for a URL
    ├── OutputPathError (ValueError)            an output name would leave its destination folder
    ├── MissingExtraError (ImportError)         an optional dependency is missing: names the pip command
    ├── IndexSaltError (ValueError)             an index's salt file is not a salt (empty, short, not hex)
    └── IndexQueryError (ValueError)            a selection's query fails on the index: lists its columns

    DicomXrayWarning (UserWarning)
    ├── RenderWarning     something in a readable file was ignored, or the image is blank
    ├── DecoderWarning    a backend could not decode a stream and the next one did; a plugin failed to load
    ├── CacheWarning      an entry could not be used; the source is read instead
    ├── SkipWarning       a sample skipped under on_error="skip"
    ├── IndexWarning      index and files disagree, settings changed, an empty selection
    ├── LabelWarning      accepted but suspicious labels
    └── LoaderWarning     a sampler/DataLoader mismatch that costs time; a relisting that failed

Constructors take one message plus keyword-only extras, so instances survive
``pickle`` and DataLoader workers re-raise them as themselves.
This module imports nothing from the rest of the package.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "CorruptPixelDataError",
    "DecoderUnavailableError",
    "DicomXrayError",
    "DicomXrayWarning",
    "FrameIndexError",
    "ImageTooLargeError",
    "IndexQueryError",
    "IndexSaltError",
    "LabelFormatError",
    "MissingExtraError",
    "MissingPixelDataError",
    "NotDicomError",
    "OutputPathError",
    "RemoteAccessError",
    "RemoteSourceError",
    "SourceChangedError",
    "SourceFileNotFoundError",
    "SourceReadError",
    "UnsupportedImageError",
    "CacheWarning",
    "DecoderWarning",
    "IndexWarning",
    "LabelWarning",
    "LoaderWarning",
    "RenderWarning",
    "SkipWarning",
]


class DicomXrayError(Exception):
    """Base class of every error raised by dicomxray.

    ``path`` names the file concerned (or ``None``); it is part of the message
    too, so a bare ``str(err)`` already says which file failed.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), str(self), self.path))


def _rebuild(cls: type[DicomXrayError], message: str, path: str | None) -> DicomXrayError:
    return cls(message, path=path)


class NotDicomError(DicomXrayError, ValueError):
    """Raised when a file cannot be parsed as DICOM (no DICM magic and no sane dataset)."""


class MissingPixelDataError(DicomXrayError, ValueError):
    """Raised when a dataset has no Pixel Data element or lacks the tags needed to read it."""


class CorruptPixelDataError(DicomXrayError, ValueError):
    """Raised when pixel data is truncated or a decoder rejects the stream."""


class UnsupportedImageError(DicomXrayError, ValueError):
    """Raised for images that are not grayscale radiographs we can render (e.g. palette colour)."""


class ImageTooLargeError(DicomXrayError, ValueError):
    """Raised before allocation when Rows x Columns x Frames exceeds the configured limit."""


class DecoderUnavailableError(DicomXrayError, RuntimeError):
    """Raised when no installed backend decodes the transfer syntax; the message names the pip package."""


class CacheError(DicomXrayError, OSError):
    """Raised when the cache directory cannot be written and strict caching was asked for."""


class SourceFileNotFoundError(DicomXrayError, FileNotFoundError):
    """Raised when a DICOM file or a data set root does not exist or holds no DICOM files."""


class FrameIndexError(DicomXrayError, IndexError):
    """Raised when a frame past the file's Number of Frames is asked for."""


class LabelFormatError(DicomXrayError, ValueError):
    """Raised when a label file (a competition's CSV) does not have the format its adapter expects."""


class SourceReadError(DicomXrayError, OSError):
    """Raised when a file exists but cannot be read (permissions, a symlink loop, an I/O error, too many
    open files); the message names the file and the operating system's reason."""


class SourceChangedError(DicomXrayError, RuntimeError):
    """Raised when a file is modified in place while it is being read (so no mixed image is returned)."""


class RemoteSourceError(DicomXrayError, OSError):
    """Raised when reading a URL fails for a reason other than a missing object or a refused access:
    transient errors (5xx, timeouts, connection resets) that persisted through every retry, or a
    protocol fsspec does not know.  The message names the URL."""


class RemoteAccessError(RemoteSourceError, PermissionError):
    """Raised when an object store refuses access to a URL (401/403) or no credential was found;
    never retried.  The message names the URL and says to check ``storage_options``."""


class OutputPathError(DicomXrayError, ValueError):
    """Raised when an output name derived from a source (a file's relative path, a URL key, a DICOMDIR
    reference) would leave its destination folder; nothing is written there.  The message names both."""


class MissingExtraError(DicomXrayError, ImportError):
    """Raised when a URL's filesystem is not installed; the message names the pip command
    (``pip install "dicomxray[s3]"``)."""


class DicomXrayWarning(UserWarning):
    """The base of every warning dicomxray gives: filter them all with
    ``warnings.filterwarnings("ignore", category=DicomXrayWarning)``, or one kind by its subclass."""


class RenderWarning(DicomXrayWarning):
    """A file is readable but something in it was ignored or gives a degenerate image (an invalid window
    skipped, a window that maps the whole image to one value)."""


class DecoderWarning(DicomXrayWarning):
    """A decoder backend could not decode a stream (a feature, bit depth or variant it lacks) and the next
    backend for the syntax decoded it; or an installed decoder plugin could not be registered."""


class CacheWarning(DicomXrayWarning):
    """A cache entry could not be opened, read, written or removed; the source is read instead."""


class SkipWarning(DicomXrayWarning):
    """A sample was skipped under ``on_error="skip"`` and a substitute takes its place."""


class IndexWarning(DicomXrayWarning):
    """The index does not match the files (a file changed since it was indexed), was rebuilt with other
    settings, or a selection is empty."""


class LabelWarning(DicomXrayWarning):
    """Labels that are accepted but suspicious: unlabelled files, empty folds, a vote rule without votes."""


class LoaderWarning(DicomXrayWarning):
    """A loading setup that works but wastes time (a sampler told other batch sizes or workers than the
    DataLoader it serves), or runs on an older listing (a DICOMweb server that did not answer a relisting)."""


class IndexSaltError(DicomXrayError, ValueError):
    """Raised when an index's salt file (``<index>.salt``) is not a salt dicomxray wrote (not hex, too
    short, or empty beside an index built with the salt it lost); the message names both files."""


class IndexQueryError(DicomXrayError, ValueError):
    """Raised when a selection's query cannot be evaluated on an index; the message lists the index's
    columns."""
