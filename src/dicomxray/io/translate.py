"""The one map from third-party exceptions to the error tree of :mod:`dicomxray.errors`.

Every place that catches what the operating system, fsspec, botocore or aiohttp raise, or an
``ImportError`` of an optional dependency, hands it to :func:`translate` or :func:`missing_extra`, so a
given failure is the same error (and the same message shape) wherever it happens:

==========================================  ==========================  ===========================
raised                                      local file                  URL
==========================================  ==========================  ===========================
``FileNotFoundError``, 404/410, NoSuchKey    SourceFileNotFoundError     SourceFileNotFoundError
``IsADirectoryError``                        NotDicomError               (a prefix: listed instead)
``PermissionError``, 401/403, no credential  SourceReadError             RemoteAccessError
412 / PreconditionFailed                     SourceChangedError          SourceChangedError
5xx, 408/429, timeouts, resets; the rest     SourceReadError             RemoteSourceError
``ImportError`` of an optional package       MissingExtraError (names ``pip install "dicomxray[extra]"``)
whatever pydicom raises parsing garbage      NotDicomError (:func:`unreadable_dataset`)
==========================================  ==========================  ===========================

:func:`error_kind` is the classification itself; :func:`dicomxray.io.remote.retrying` also uses it to
decide what is worth a retry.  Messages name the file or URL, never a credential.
"""

from __future__ import annotations

from ..errors import (
    DicomXrayError,
    MissingExtraError,
    NotDicomError,
    RemoteAccessError,
    RemoteSourceError,
    SourceChangedError,
    SourceFileNotFoundError,
    SourceReadError,
)

__all__ = ["EXTRAS", "error_kind", "missing_extra", "reason", "translate", "unreadable_dataset"]

#: Optional package -> the dicomxray extra that installs it (``pip install "dicomxray[<extra>]"``).
EXTRAS: dict[str, str] = {
    "s3fs": "s3", "gcsfs": "gcs", "adlfs": "azure", "aiohttp": "http", "fsspec": "s3",
    "pyarrow": "index", "pandas": "index", "distributed": "dask", "dask": "dask",
    "albumentations": "augment", "cv2": "augment",
}

_TRANSIENT_NAMES = frozenset({
    "ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError", "ClientOSError", "EndpointConnectionError",
    "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError", "HTTPClientError", "IncompleteRead",
    "FSTimeoutError", "ResponseParserError", "ResponseStreamingError"})
_DENIED_NAMES = frozenset({"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
                           "NoAuthTokenError", "ClientAuthenticationError", "DefaultCredentialsError", "RefreshError"})
_TRANSIENT_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling",
                              "RequestTimeTooSkewed"})


def _status(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, error code) of an aiohttp or botocore error, when it carries one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata") or {}
        code = str((response.get("Error") or {}).get("Code") or "")
        return meta.get("HTTPStatusCode"), code
    status = getattr(exc, "status", None)
    return (status if isinstance(status, int) else None), ""


def error_kind(exc: BaseException) -> str:
    """What an exception means for a read.

    Returns
    -------
    str
        ``missing``, ``denied``, ``changed``, ``range`` (416: a range past the end), ``directory``,
        ``transient`` (worth a retry) or ``other``.
    """
    names = {c.__name__ for c in type(exc).__mro__}
    status, code = _status(exc)
    if names & _DENIED_NAMES or status in (401, 403) or code in ("AccessDenied", "InvalidAccessKeyId"):
        return "denied"
    if status in (404, 410) or code in ("NoSuchKey", "NoSuchBucket") or isinstance(exc, FileNotFoundError):
        return "missing"
    if status == 412 or code == "PreconditionFailed":
        return "changed"
    if status == 416 or code == "InvalidRange":
        return "range"
    if isinstance(exc, IsADirectoryError):
        return "directory"
    if (status is not None and (status >= 500 or status in (408, 429))) or code in _TRANSIENT_CODES:
        return "transient"
    if isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, (TimeoutError, ConnectionError)) or names & _TRANSIENT_NAMES:
        return "transient"
    if exc.__cause__ is not None and exc.__cause__ is not exc:  # s3fs wraps a ClientError in OSError(EIO)
        return error_kind(exc.__cause__)
    return "other"


def reason(exc: BaseException) -> str:
    """The exception in one line: the operating system's text for an ``OSError``, else its type and first
    line (at most 300 characters)."""
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def missing_extra(package: str, needed_for: str, *, path: str | None = None) -> MissingExtraError:
    """The error for an optional ``package`` that is not installed, naming the pip command.

    Parameters
    ----------
    package : str
        The import name (``pyarrow``, ``s3fs``...).
    needed_for : str
        What needed it (``"reading s3:// URLs"``), the start of the message.
    path : str, optional
        The file or URL concerned, named first in the message.
    """
    extra = EXTRAS.get(package)
    hint = f'pip install "dicomxray[{extra}]"' if extra else f"pip install {package}"
    prefix = f"{path}: " if path else ""
    return MissingExtraError(f"{prefix}{needed_for} needs {package}: {hint}", path=path)


def unreadable_dataset(exc: BaseException, path: str | None = None) -> NotDicomError:
    """The error for bytes pydicom could not parse as a data set (it raises many kinds on garbage).

    Parameters
    ----------
    exc : BaseException
        What pydicom raised.
    path : str, optional
        The file concerned, named first in the message (an index row names its file itself).
    """
    prefix = f"{path}: " if path else ""
    return NotDicomError(f"{prefix}not a readable DICOM file ({reason(exc)})", path=path)


def translate(exc: BaseException, path: str, *, remote: bool = False, doing: str = "read") -> DicomXrayError:
    """The error of the tree that ``exc``, raised while reading ``path``, means (see the module's table).

    Parameters
    ----------
    exc : BaseException
        What the operating system, fsspec, botocore, aiohttp or an import raised.  A
        :class:`DicomXrayError` is returned as it is.
    path : str
        The file or URL, named in the message and in ``.path``.
    remote : bool
        ``path`` was read through an object store (as the opener decided): access refusals are
        :class:`RemoteAccessError` and anything else :class:`RemoteSourceError`.
    doing : str
        The verb of the message (``"read"``, ``"stat"``, ``"list"``).
    """
    if isinstance(exc, DicomXrayError):
        return exc
    if isinstance(exc, ImportError):
        return missing_extra(exc.name or "a package", f"{doing}ing this", path=path)
    kind = error_kind(exc)
    what = "no such object" if remote else "file not found"
    if kind == "missing":
        return SourceFileNotFoundError(f"{path}: {what}" + (f" ({reason(exc)})" if remote else ""), path=path)
    if kind == "directory":
        return NotDicomError(f"{path}: is a directory, not a DICOM file", path=path)
    if kind == "changed":
        return SourceChangedError(f"{path}: changed while being read", path=path)
    if remote and kind == "denied":
        return RemoteAccessError(f"{path}: access denied or no credential ({reason(exc)}); check the "
                                 "storage_options / credentials", path=path)
    if remote:
        return RemoteSourceError(f"{path}: {reason(exc)}", path=path)
    return SourceReadError(f"{path}: cannot {doing} the file ({reason(exc)})", path=path)

