"""One map from third-party exceptions to the error tree (dicomxray.io.translate): each kind of failure,
local or remote (a real HTTP server and moto's S3 server), is the same error wherever it happens; a missing
optional dependency is always MissingExtraError naming the pip command; every warning is a DicomXrayWarning
subclass."""

from __future__ import annotations

import ast
import os
import pickle
import sys
from pathlib import Path

import pytest

import dicomxray
from dicomxray import errors, read_xray
from dicomxray.errors import (
    DicomXrayWarning,
    MissingExtraError,
    NotDicomError,
    RemoteAccessError,
    RemoteSourceError,
    SourceChangedError,
    SourceFileNotFoundError,
    SourceReadError,
)
from dicomxray.io.source import file_identity
from dicomxray.testing import chest_phantom, write_dicom
from remote_servers import file_server, make_bucket, moto_server, s3_options

SRC = Path(dicomxray.__file__).parent


def _dicom(path: Path) -> Path:
    return write_dicom(path, chest_phantom(48, 40, bits=12, seed=3), bits_stored=12)


# ----------------------------------------------------------------------------- local files
@pytest.mark.parametrize("make, error", [
    pytest.param(lambda p: p / "gone.dcm", SourceFileNotFoundError, id="missing"),
    pytest.param(lambda p: p, NotDicomError, id="directory"),
    pytest.param(lambda p: (os.symlink(p / "loop", p / "loop"), p / "loop")[1], SourceReadError, id="symlink-loop"),
], )
def test_local_failures_map_to_one_error_for_read_and_stat(tmp_path: Path, make, error) -> None:
    path = make(tmp_path)
    with pytest.raises(error, match=str(path)) as read:
        read_xray(path)
    assert read.value.path == str(path)
    if error is not NotDicomError:  # a folder has a stat
        with pytest.raises(error, match=str(path)):
            file_identity(path)
    assert type(pickle.loads(pickle.dumps(read.value))) is error


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("status, error, text", [
    pytest.param("404", SourceFileNotFoundError, "no such object", id="404-missing"),
    pytest.param("403", RemoteAccessError, "access denied", id="403-denied"),
    pytest.param("412", SourceChangedError, "changed while being read", id="412-changed"),
    pytest.param("400", RemoteSourceError, "400", id="400-other"),
])
def test_http_statuses_map_to_one_error(tmp_path: Path, status: str, error: type, text: str) -> None:
    _dicom(tmp_path / "a.dcm")
    with file_server(tmp_path) as server:
        server.fail("/a.dcm", status)
        with pytest.raises(error, match=text) as err:
            read_xray(f"{server.url}/a.dcm")
        assert len(server.requests("/a.dcm")) == 1  # none of them is retried
    assert err.value.path == f"{server.url}/a.dcm"


def test_http_transient_errors_are_retried_then_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomxray.io import remote

    monkeypatch.setattr(remote, "BACKOFF_S", 0.001)
    _dicom(tmp_path / "a.dcm")
    with file_server(tmp_path) as server:
        server.fail("/a.dcm", *["503"] * remote.ATTEMPTS)
        with pytest.raises(RemoteSourceError, match=f"gave up after {remote.ATTEMPTS} attempts"):
            read_xray(f"{server.url}/a.dcm")
        assert len(server.requests("/a.dcm")) == remote.ATTEMPTS


def test_s3_missing_key_and_bucket_are_not_found() -> None:
    with moto_server() as endpoint:
        make_bucket(endpoint, "data")
        options = s3_options(endpoint)
        with pytest.raises(SourceFileNotFoundError, match="s3://data/nothing.dcm"):
            read_xray("s3://data/nothing.dcm", storage_options=options)
        with pytest.raises(SourceFileNotFoundError, match="s3://no-bucket/x.dcm"):
            read_xray("s3://no-bucket/x.dcm", storage_options=options)


# ----------------------------------------------------------------------------- optional dependencies
def _hidden(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # ``import name`` now raises ImportError


def test_missing_pyarrow_is_a_missing_extra_unless_csv_was_asked_for(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomxray.index import build_index

    _dicom(tmp_path / "data" / "a.dcm")
    _hidden(monkeypatch, "pyarrow", "pyarrow.parquet")
    with pytest.raises(MissingExtraError, match=r'pip install "dicomxray\[index\]"'):
        build_index(tmp_path / "data", tmp_path / "i.parquet", progress=False, workers=0)
    assert not (tmp_path / "i.csv").exists()  # no silent fallback beside it
    assert build_index(tmp_path / "data", tmp_path / "i.csv", progress=False, workers=0).format == "csv"


def test_missing_pandas_for_reading_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomxray.index import build_index, read_index

    _dicom(tmp_path / "data" / "a.dcm")
    build_index(tmp_path / "data", tmp_path / "i.csv", progress=False, workers=0)
    _hidden(monkeypatch, "pandas")
    with pytest.raises(MissingExtraError, match=r'pip install "dicomxray\[index\]"'):
        read_index(tmp_path / "i.csv")


@pytest.mark.parametrize("modules, call, extra", [
    pytest.param(("gcsfs",), lambda: read_xray("gs://b/k.dcm"), "gcs", id="gcsfs"),
    pytest.param(("adlfs",), lambda: read_xray("az://b/k.dcm"), "azure", id="adlfs"),
    pytest.param(("albumentations",), lambda: __import__("dicomxray.transforms").transforms.train_transforms(64),
                 "augment", id="albumentations"),
    pytest.param(("distributed",), lambda: __import__("dicomxray.jobs.distributed").jobs.distributed
                 .connect("local:1").__enter__(), "dask", id="distributed"),
])
def test_every_optional_dependency_is_a_missing_extra(monkeypatch: pytest.MonkeyPatch, modules, call, extra) -> None:
    _hidden(monkeypatch, *modules)
    with pytest.raises(MissingExtraError, match=rf'pip install "dicomxray\[{extra}\]"'):
        call()


# ----------------------------------------------------------------------------- warnings
def _warn_calls() -> list[tuple[str, int, str]]:
    """(file, line, category name or '') of every ``warnings.warn(...)`` in the package."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "warnings"):
                cat = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "category"), None)
                found.append((str(path.relative_to(SRC)), node.lineno, cat.id if isinstance(cat, ast.Name) else ""))
    return found


def test_every_warning_is_a_dicomxray_warning_subclass() -> None:
    calls = _warn_calls()
    assert len(calls) >= 10
    allowed = {name for name in errors.__all__
               if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), DicomXrayWarning)
               and getattr(errors, name) is not DicomXrayWarning}
    bad = [c for c in calls if c[2] not in allowed and not (c[0] == "_deprecated.py" and c[2] == "DeprecationWarning")]
    assert not bad, bad
