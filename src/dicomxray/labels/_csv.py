"""Reading a label CSV (plain or gzipped) so that every error names the file, the row and the column."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from ..errors import LabelFormatError, SourceFileNotFoundError


class CsvRow:
    """One data row of a label CSV: its values by (stripped) column name, and where it came from.

    ``row[column]`` is the raw value; ``row.text(column)`` the value stripped of surrounding spaces;
    ``row.number(column)`` / ``row.integer(column)`` parse it, raising :class:`LabelFormatError`
    that names the file, the line and the column.
    """

    __slots__ = ("line", "path", "values")

    def __init__(self, path: Path, line: int, values: dict[str, str]) -> None:
        self.path = path
        self.line = line
        self.values = values

    def error(self, message: str, column: str | None = None) -> LabelFormatError:
        """A :class:`LabelFormatError` naming this row (and ``column``)."""
        where = f" column {column!r}:" if column is not None else ""
        return LabelFormatError(f"{self.path}:{self.line}:{where} {message}", path=str(self.path))

    def __getitem__(self, column: str) -> str:
        try:
            return self.values[column]
        except KeyError:
            raise self.error(f"no such column (the file has {sorted(self.values)})", column) from None

    def get(self, column: str, default: str = "") -> str:
        value = self.values.get(column)
        return default if value is None else value

    def text(self, column: str) -> str:
        return self[column].strip()

    def number(self, column: str, *, blank: float | None = None) -> float:
        """The value as a float; ``blank`` for an empty cell (an error when ``blank`` is None)."""
        text = self.text(column)
        if not text and blank is not None:
            return blank
        try:
            return float(text)
        except ValueError:
            raise self.error(f"expected a number, got {text!r}", column) from None

    def integer(self, column: str) -> int:
        value = self.number(column)
        if not value.is_integer():
            raise self.error(f"expected an integer, got {self.text(column)!r}", column)
        return int(value)


def open_text(path: Path) -> IO[str]:
    """``path`` opened as text: gunzipped when it starts with gzip's magic (whatever its name)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_csv(path: str | os.PathLike[str], *, required: Iterable[str] = ()) -> Iterator[CsvRow]:
    """The rows of ``path`` (a CSV, plain or gzipped), header names stripped of spaces.

    Parameters
    ----------
    path : path-like
        The file.
    required : iterable of str
        Columns the header must have.

    Raises
    ------
    LabelFormatError
        Naming the file when the header lacks a required column, the file is empty, or it is
        not text; naming the file and the line when a row has more cells than the header.
    """
    p = Path(path)
    try:
        with open_text(p) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise LabelFormatError(f"{p}: empty label file (no header)", path=str(p))
            missing = [c for c in required if c not in header]
            if missing:
                raise LabelFormatError(f"{p}: missing column(s) {missing}; the header is {header}", path=str(p))
            for cells in reader:
                if not cells or not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(header):
                    raise LabelFormatError(f"{p}:{reader.line_num}: {len(cells)} cells for {len(header)} columns",
                                           path=str(p))
                yield CsvRow(p, reader.line_num, dict(zip(header, cells, strict=False)))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
        raise LabelFormatError(f"{p}: not a readable CSV ({type(exc).__name__}: {exc})", path=str(p)) from None


def header_of(path: str | os.PathLike[str]) -> list[str]:
    """The stripped column names of a CSV (plain or gzipped)."""
    p = Path(path)
    try:
        with open_text(p) as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
        raise LabelFormatError(f"{p}: not a readable CSV ({type(exc).__name__}: {exc})", path=str(p)) from None


def find_label_file(folders: Sequence[str | os.PathLike[str]], names: Sequence[str]) -> Path:
    """The first of ``names`` (e.g. ``x.csv`` then ``x.csv.gz``) found in the first folder holding one.

    Raises
    ------
    SourceFileNotFoundError
        Naming every place looked in.
    """
    tried = []
    for folder in folders:
        base = Path(os.path.expanduser(os.fspath(folder)))
        for name in names:
            path = base / name
            if path.is_file():
                return path
            tried.append(str(path))
    raise SourceFileNotFoundError(f"label file not found; looked for {tried}", path=tried[0] if tried else None)
