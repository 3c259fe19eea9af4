"""Reading CSV files that people export from Excel or a CRM: the encoding
(UTF-8 with or without BOM, GBK as Excel on Chinese Windows writes it,
UTF-16 "Unicode text"), the delimiter, and rows that are too large, read as
a stream with line numbers.

Example:
    >>> with open_csv("leads.csv") as table:
    ...     table.encoding.label, table.header
    ...     for row in table.rows():
    ...         row.line, row.fields or row.error
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from edge.errors import InputError

SNIFF_BYTES: Final = 64 * 1024
MAX_FIELD_CHARS: Final = 131_072
"""Python's csv limit: a longer field rejects its row (a 10 MB cell is an attack or a broken file)."""
_DELIMITERS: Final = (",", "\t", ";")


@dataclass(frozen=True)
class Encoding:
    codec: str
    """Python codec the file is read with."""
    label: str
    """What to tell the user: "UTF-8", "UTF-8 with BOM", "GBK", "UTF-16"."""
    guessed: bool
    """True when chosen by looking at the bytes rather than given or marked by a BOM."""

    def note(self) -> str | None:
        if self.label == "GBK" and self.guessed:
            return ("read as GBK: the file is not UTF-8 (Excel on Chinese Windows saves CSV this way); "
                    "if names look garbled, save it as \"CSV UTF-8\" or pass --encoding")
        return None


def detect(head: bytes, name: str = "file") -> Encoding:
    """The encoding of a file from its first bytes.

    Raises:
        InputError: an Excel workbook, binary data, or text in neither UTF-8 nor GBK.
    """
    if head.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8-sig", "UTF-8 with BOM", False)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Encoding("utf-16", "UTF-16", False)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(f"{name} is an Excel workbook, not CSV; in Excel choose 另存为 (Save As) -> "
                         "\"CSV UTF-8 (逗号分隔)\" and import that file")
    if b"\x00" in head:
        raise InputError(f"{name} contains NUL bytes: it is not a text file; export the list as CSV")
    try:
        head.decode("utf-8")
        return Encoding("utf-8", "UTF-8", True)
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and len(head) >= SNIFF_BYTES:  # a character cut by the sniff window
            try:
                head[: exc.start].decode("utf-8")
                return Encoding("utf-8", "UTF-8", True)
            except UnicodeDecodeError:
                pass
    try:
        head.decode("gb18030")
        return Encoding("gb18030", "GBK", True)
    except UnicodeDecodeError:
        pass
    raise InputError(f"{name} is neither UTF-8 nor GBK text; save it as \"CSV UTF-8\" and import again")


def given(encoding: str) -> Encoding:
    """An encoding named by the user (--encoding gbk)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; use utf-8, utf-8-sig or gbk") from None
    label = {"gbk": "GBK", "gb2312": "GBK", "gb18030": "GBK", "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM"}
    codec = "gb18030" if info.name in ("gbk", "gb2312") else info.name
    return Encoding(codec, label.get(info.name, info.name), False)


@dataclass(frozen=True)
class Row:
    line: int
    """The file line the row starts on (the header is line 1)."""
    fields: list[str] | None
    error: str | None = None


class CsvFile:
    """One open CSV file: encoding, delimiter, header; rows() streams the rest."""

    def __init__(self, path: str | Path, encoding: str | None = None):
        self.path = Path(path)
        try:
            self._raw: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}") from None
        self.size = self.path.stat().st_size
        head = self._raw.read(SNIFF_BYTES)
        self._raw.seek(0)
        self.encoding = given(encoding) if encoding else detect(head, str(self.path))
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding.codec, newline="")
        first = self._read_first_line()
        self.delimiter = max(_DELIMITERS, key=lambda d: (first.count(d), d == ","))
        self._reader = csv.reader(self._chain(first), delimiter=self.delimiter)
        self._line = 0
        header = self._next()
        if header is None or header.fields is None:
            raise InputError(f"{self.path}: the first line must be a header row (e.g. phone,name,company)")
        self.header = [h.strip().lstrip("\ufeff") for h in header.fields]

    def _read_first_line(self) -> str:
        try:
            return self._text.readline()
        except UnicodeDecodeError:
            raise InputError(f"{self.path}:1: not valid {self.encoding.label}; save the file as \"CSV UTF-8\" "
                             "or pass --encoding") from None

    def _chain(self, first: str) -> Iterator[str]:
        yield first
        yield from self._text

    def _next(self) -> Row | None:
        start = self._reader.line_num + 1
        try:
            fields = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            if "field larger" in str(exc):
                return Row(start, None, f"a field is longer than {MAX_FIELD_CHARS} characters")
            return Row(start, None, f"malformed CSV ({exc})")
        except UnicodeDecodeError:
            raise InputError(f"{self.path}: around line {start}: not valid {self.encoding.label} (the file mixes "
                             "encodings?); save it as \"CSV UTF-8\" or pass --encoding") from None
        return Row(start, fields)

    def rows(self) -> Iterator[Row]:
        """Rows after the header; blank lines are skipped."""
        while True:
            row = self._next()
            if row is None:
                return
            if row.fields is not None and not any(f.strip() for f in row.fields):
                continue
            yield row

    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_csv(path: str | Path, encoding: str | None = None) -> CsvFile:
    """Open a CSV file for streaming.

    Raises:
        InputError: unreadable, not text, an unknown encoding, or no header line.
    """
    return CsvFile(path, encoding)
