"""The index file: its columns, Parquet or CSV, atomic writes, the salt, and reading it back.

Parquet (through pyarrow, the ``index`` extra) keeps the index's settings in
the file's key-value metadata under ``dicomxray``; a CSV index keeps them in a
sidecar ``<index>.meta.json``.  Either is written to a temporary file beside
the target and renamed over it, then given the mode a new file gets under the
umask (``mkstemp`` would leave 0600).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexSaltError
from ..io.atomic import atomic_path
from .truth import NO_DECODER, NO_DECODER_TEXT, decoder_reason

__all__ = ["COLUMNS", "PATIENT_COLUMNS", "SCHEMA_VERSION", "Previous", "column_names", "columns_for", "fetch_index",
           "load_previous", "load_salt", "read_frame", "read_meta", "salt_id", "write_index"]

SCHEMA_VERSION = 2  # 2: undecodable_reason
_META_KEY = b"dicomxray"

#: Column -> type, in file order.  DICOM keywords for tags, snake_case for what the indexer adds.
COLUMNS: dict[str, str] = {
    "path": "str", "size": "int64", "mtime_ns": "int64", "inode": "uint64", "ctime_ns": "int64",
    "SOPInstanceUID": "str", "SOPClassUID": "str", "StudyInstanceUID": "str", "SeriesInstanceUID": "str",
    "Modality": "str", "ViewPosition": "str", "BodyPartExamined": "str", "ImageLaterality": "str",
    "Manufacturer": "str", "ManufacturerModelName": "str", "SeriesNumber": "int64", "InstanceNumber": "int64",
    "Rows": "int32", "Columns": "int32", "NumberOfFrames": "int32", "SamplesPerPixel": "int32",
    "BitsAllocated": "int32", "BitsStored": "int32", "PixelRepresentation": "int32",
    "PhotometricInterpretation": "str", "TransferSyntaxUID": "str", "decodable": "bool", "decoder": "str",
    "undecodable_reason": "str",
    "has_window": "bool", "has_voi_lut": "bool", "pixel_data_offset": "int64", "pixel_data_length": "int64",
    "patient_hash": "str", "error_type": "str", "error": "str",
}
#: Written only with ``include_patient=True`` (what PS3.15's basic profile removes; idc-index has them).
PATIENT_COLUMNS: dict[str, str] = {
    "PatientID": "str", "PatientSex": "str", "PatientAge": "str", "StudyDate": "str", "SeriesDate": "str",
    "StudyDescription": "str", "SeriesDescription": "str",
}


def columns_for(include_patient: bool) -> dict[str, str]:
    return {**COLUMNS, **PATIENT_COLUMNS} if include_patient else dict(COLUMNS)


# ---------------------------------------------------------------------------- salt
def load_salt(path: Path) -> bytes:
    """The salt kept in ``path``; created (32 random bytes, hex, mode 0600) when absent, reused when present.

    A new salt is written whole to a temporary file beside ``path`` and linked to its name (``os.link``
    fails when the name exists), so a reader never sees a partial salt and two first builds racing agree
    on the one that was linked first.  An empty ``path`` (what a crash left when the salt was created
    empty, then written) is replaced when no index beside it uses it, else an :class:`IndexSaltError`.
    """
    while True:
        try:
            return _existing_salt(path)
        except FileNotFoundError:
            pass
        salt = secrets.token_bytes(32)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(salt.hex() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
            return salt
        except FileExistsError:
            continue  # another build linked its salt first: read that one
        finally:
            with suppress(OSError):
                os.unlink(tmp)


def _existing_salt(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
        if not raw.strip():
            _drop_empty_salt(path, os.fstat(fh.fileno()))
            raise FileNotFoundError(path)  # dropped: create a new one
    try:
        salt = bytes.fromhex(raw.decode("ascii").strip())
    except ValueError:
        raise IndexSaltError(f"{path}: not a salt written by dicomxray (expected hex digits)", path=str(path)) from None
    if len(salt) < 16:
        raise IndexSaltError(f"{path}: salt too short ({len(salt)} bytes, need >= 16)", path=str(path))
    return salt


def _drop_empty_salt(path: Path, seen: os.stat_result) -> None:
    """Remove the empty salt ``path`` (inode ``seen``) unless an index beside it was built with the salt it lost."""
    index = path.with_name(path.name.removesuffix(".salt"))
    if index != path and index.exists():
        raise IndexSaltError(f"{path}: the salt file is empty (a crash while it was written?) but the index {index} "
                             "was built with the salt it held: remove both to build afresh, or pass salt=",
                             path=str(path))
    aside = path.with_name(f".{path.name}.{os.getpid()}.empty")
    try:
        os.rename(path, aside)  # atomic: only one racing build takes the empty file away
    except FileNotFoundError:
        return  # another build took it already
    try:
        if os.stat(aside).st_ino != seen.st_ino:  # took a good salt linked meanwhile by another build: put it back
            with suppress(FileExistsError):
                os.link(aside, path)
    finally:
        os.unlink(aside)


def salt_id(salt: bytes) -> str:
    """Names a salt without revealing it, so an index built with another salt is not reused."""
    return hmac.new(salt, b"dicomxray index salt id", hashlib.sha256).hexdigest()[:16]


# ---------------------------------------------------------------------------- writing
def atomic_output(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``target``, then rename it over ``target`` with
    the umask's normal mode (:func:`dicomxray.io.atomic.atomic_path`): readers see the old index or the
    new one, never a part."""
    with atomic_path(target) as tmp:
        write(tmp)


def _arrow_schema(columns: dict[str, str], meta: dict[str, Any]) -> Any:
    import pyarrow as pa

    types = {"str": pa.string(), "int64": pa.int64(), "uint64": pa.uint64(), "int32": pa.int32(), "bool": pa.bool_()}
    return pa.schema([(name, types[kind]) for name, kind in columns.items()],
                     metadata={_META_KEY: json.dumps(meta).encode()})


def write_index(
    target: Path, fmt: str, columns: dict[str, str], new_rows: list[tuple[Any, ...]], previous: Previous | None,
    reuse: Sequence[int], decoders: dict[str, str], meta: dict[str, Any],
) -> int:
    """Write ``new_rows`` plus the ``reuse`` rows of ``previous``, sorted by path; return the row count.

    ``decodable``/``decoder``/``undecodable_reason`` are recomputed for every row from ``decoders``
    (transfer syntax -> backend installed here) and the reason its header gave, reused rows included:
    ``decodable`` is true exactly when the row has no error, no header reason and a decoder.
    """
    names = list(columns)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(columns, meta)
        table = pa.Table.from_arrays([pa.array(list(col), type=schema.field(i).type)
                                      for i, col in enumerate(_transpose(new_rows, len(names)))], schema=schema)
        if previous is not None and reuse:
            table = pa.concat_tables([table, previous.take_table(reuse, schema)])
        table = _with_decoders(table.sort_by("path"), decoders, schema)
        atomic_output(target, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        return int(table.num_rows)
    rows = list(new_rows) + (previous.take_rows(reuse, names) if previous is not None and reuse else [])
    rows.sort(key=lambda r: r[0])
    at = {name: i for i, name in enumerate(names)}
    fixed = []
    for row in rows:
        values = list(row)
        ok = values[at["error_type"]] is None
        backend = decoders.get(values[at["TransferSyntaxUID"]]) if ok else None
        reason = (decoder_reason(values[at["TransferSyntaxUID"]], backend, values[at["undecodable_reason"]]) if ok
                  else f"{values[at['error_type']]}: {values[at['error']]}")
        values[at["decodable"]], values[at["decoder"]], values[at["undecodable_reason"]] = reason is None, backend, reason
        fixed.append(values)
    def write_meta(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    atomic_output(target.with_name(target.name + ".meta.json"), write_meta)
    atomic_output(target, lambda tmp: _write_csv(tmp, names, fixed))
    return len(fixed)


def _transpose(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


def _with_decoders(table: Any, decoders: dict[str, str], schema: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    keys, values = pa.array(list(decoders), pa.string()), pa.array(list(decoders.values()), pa.string())
    ok = pc.is_null(table.column("error_type"))
    found = pc.take(values, pc.index_in(table.column("TransferSyntaxUID"), value_set=keys))
    none = pa.scalar(None, pa.string())
    decoder = pc.if_else(ok, found, none)
    syntax, before = table.column("TransferSyntaxUID"), table.column("undecodable_reason")
    from_header = pc.if_else(pc.fill_null(pc.starts_with(before, NO_DECODER), False), none, before)  # see decoder_reason
    no_decoder = pc.if_else(pc.is_null(decoder), pc.binary_join_element_wise(NO_DECODER_TEXT, syntax, ""), none)
    error = pc.binary_join_element_wise(table.column("error_type"), table.column("error"), ": ")
    reason = pc.if_else(ok, pc.coalesce(from_header, no_decoder), error)
    decodable = pc.is_null(reason)
    table = table.set_column(schema.get_field_index("decoder"), "decoder", decoder)
    table = table.set_column(schema.get_field_index("undecodable_reason"), "undecodable_reason", reason)
    return table.set_column(schema.get_field_index("decodable"), "decodable", decodable)


def _write_csv(tmp: str, names: list[str], rows: list[list[Any]]) -> None:
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


# ---------------------------------------------------------------------------- reading
def read_meta(path: Path) -> dict[str, Any] | None:
    """The settings an index was written with (``None`` when the file has none)."""
    if path.suffix.lower() == ".csv":
        side = path.with_name(path.name + ".meta.json")
        return json.loads(side.read_text(encoding="utf-8")) if side.exists() else None
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
    return json.loads(raw) if raw else None


def _csv_value(kind: str, text: str) -> Any:
    if text == "":
        return None
    if kind == "str":
        return text
    if kind == "bool":
        return text == "True"
    return int(text)


@dataclass
class Previous:
    """An earlier index: its settings and, per path, the identity of each row read without error."""

    meta: dict[str, Any]
    identities: dict[str, tuple[int, int, int, int, int]]  # path -> (size, mtime_ns, inode, ctime_ns, row)
    table: Any = None  # pyarrow.Table (Parquet)
    rows: list[dict[str, str]] | None = None  # raw CSV rows

    def take_table(self, indices: Sequence[int], schema: Any) -> Any:
        import pyarrow as pa

        if self.table is not None:
            return self.table.take(pa.array(indices, pa.int64())).select(schema.names).cast(schema)
        rows = self.take_rows(indices, schema.names)
        return pa.Table.from_arrays([pa.array(list(col), type=schema.field(i).type)
                                     for i, col in enumerate(_transpose(rows, len(schema.names)))], schema=schema)

    def take_rows(self, indices: Sequence[int], names: list[str]) -> list[tuple[Any, ...]]:
        if self.rows is None:
            import pyarrow as pa

            picked = self.table.take(pa.array(indices, pa.int64())).select(names).to_pylist()
            return [tuple(r[n] for n in names) for r in picked]
        kinds = {**COLUMNS, **PATIENT_COLUMNS}
        return [tuple(_csv_value(kinds[n], self.rows[i].get(n, "")) for n in names) for i in indices]


def load_previous(path: Path) -> Previous | None:
    """An earlier index at ``path`` for an incremental run (``None`` when absent or unreadable)."""
    try:
        meta = read_meta(path)
        if meta is None:
            return None
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            ident = [(r["path"], r["size"], r["mtime_ns"], r["inode"], r["ctime_ns"], r["error_type"]) for r in rows]
            identities = {p: (int(s), int(m), int(i), int(c), n) for n, (p, s, m, i, c, e) in enumerate(ident) if not e}
            return Previous(meta, identities, rows=rows)
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        cols = table.select(["path", "size", "mtime_ns", "inode", "ctime_ns", "error_type"]).to_pydict()
        identities = {
            p: (s, m, i, c, n)
            for n, (p, s, m, i, c, e) in enumerate(zip(*cols.values(), strict=True)) if e is None
        }
        return Previous(meta, identities, table=table)
    except (OSError, ValueError, KeyError, ImportError):
        return None


def column_names(path: Path) -> list[str]:
    """Every column of the index at ``path``, in file order (its schema or CSV header only)."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), [])
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def read_frame(path: Path, columns: Sequence[str] | None = None) -> Any:
    """The index as a pandas DataFrame with nullable dtypes (strings Arrow-backed when pyarrow is there);
    only ``columns`` (in file order) when given."""
    import pandas as pd

    if path.suffix.lower() == ".csv":
        kinds = {**COLUMNS, **PATIENT_COLUMNS}
        dtypes = {"str": "string", "int64": "Int64", "uint64": "UInt64", "int32": "Int32", "bool": "boolean"}
        header = column_names(path)
        _check_columns(path, header, columns)
        return pd.read_csv(path, dtype={c: dtypes[kinds[c]] for c in header if c in kinds}, keep_default_na=False,
                           na_values=[""], usecols=None if columns is None else [c for c in header if c in columns])
    import pyarrow as pa
    import pyarrow.parquet as pq

    mapping = {pa.string(): pd.StringDtype("pyarrow"), pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(),
               pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype()}
    names = column_names(path)
    _check_columns(path, names, columns)
    wanted = None if columns is None else [c for c in names if c in columns]
    return pq.read_table(path, columns=wanted).to_pandas(types_mapper=mapping.get)


def fetch_index(url: str, folder: Path, storage_options: Mapping[str, Any] | None) -> Path:
    """Copy an index stored behind a URL into ``folder`` (with a CSV's ``.meta.json`` when there is one)."""
    from ..errors import SourceFileNotFoundError
    from ..io.source import read_source

    name = url.rstrip("/").rpartition("/")[2] or "index.parquet"
    local = folder / name
    local.write_bytes(read_source(url, storage_options=storage_options).data)
    if local.suffix.lower() == ".csv":
        with suppress(SourceFileNotFoundError):  # a CSV without settings: select() then needs root=
            side = read_source(url + ".meta.json", storage_options=storage_options).data
            local.with_name(name + ".meta.json").write_bytes(side)
    return local


def _check_columns(path: Path, present: Sequence[str], columns: Sequence[str] | None) -> None:
    unknown = sorted(set(columns or ()) - set(present))
    if unknown:
        hint = " (patient columns exist only with include_patient=True)" if set(unknown) & set(PATIENT_COLUMNS) else ""
        raise ValueError(f"{path}: no column {', '.join(unknown)} in this index{hint}")
