"""Pure parsers for uploaded code / certificate files (.txt, .csv, .xls, .xlsx).

Nothing here touches the database: :func:`iter_number_chunks` turns an uploaded file into lists of
validated numbers, in file order, and raises :class:`~tessera.errors.InvalidFile` or
:class:`~tessera.errors.InvalidNumber` as soon as it meets something it cannot accept. Chunks are
produced lazily, so a caller that stores them one by one must be ready to roll back when a later
chunk raises.

Text formats are streamed (a 1,000,000-line file is never held in memory as a whole); spreadsheets
are loaded whole by python-calamine.

Line numbers are 1-based. For .txt they count physical lines (LF, CRLF or a lone CR end a line); for
.csv they are the physical line on which the row starts; for spreadsheets they are the real sheet
row numbers (row 1 is the first row of the sheet even when it is empty).

Warning: python-calamine (0.9) is not robust against hostile .xls files: some corrupt files make the
Rust code panic (mapped to ``InvalidFile`` here) and some make it attempt a huge allocation, which
aborts the whole Python process. Run spreadsheet parsing in a disposable, memory-limited worker
process if uploads are untrusted.
"""

from __future__ import annotations

import contextlib
import csv
import decimal
import enum
import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from tessera.errors import InvalidFile, InvalidNumber

__all__ = ["FileFormat", "ProgressCallback", "detect_format", "iter_number_chunks"]

#: ``on_progress(done, total)``: bytes for .txt/.csv, rows for spreadsheets.
ProgressCallback = Callable[[int, int], None]

#: Integral floats at or above this magnitude may already have lost digits.
_MAX_EXACT_FLOAT = 2**53


class FileFormat(enum.Enum):
    TEXT = "txt"
    CSV = "csv"
    XLS = "xls"
    XLSX = "xlsx"


_BY_EXTENSION = {fmt.value: fmt for fmt in FileFormat}


def detect_format(filename: str | None) -> FileFormat:
    """The upload's format, from its extension (case-insensitive)."""
    name = (filename or "").strip()
    _, dot, extension = name.rpartition(".")
    fmt = _BY_EXTENSION.get(extension.lower()) if dot else None
    if fmt is None:
        shown = f"'.{extension}'" if dot else "without an extension"
        raise InvalidFile(reason=f"unsupported file type {shown}; expected .txt, .csv, .xls or .xlsx")
    return fmt


def iter_number_chunks(
    stream: BinaryIO,
    fmt: FileFormat,
    *,
    min_length: int,
    max_length: int,
    chunk_size: int = 10_000,
    on_progress: ProgressCallback | None = None,
) -> Iterator[list[str]]:
    """Yield the file's numbers in file order, in lists of at most ``chunk_size``.

    Each number is stripped of surrounding whitespace and must be ``min_length..max_length``
    characters (code points) long. Blank lines / empty cells are errors except at the very end of
    the file. The stream is read from its current position and is left open.

    ``on_progress(done, total)`` is called after each chunk has been consumed and once at the end
    (then ``done == total``); units are bytes for text formats and rows for spreadsheets. For a
    non-seekable text stream the total is unknown, so it is only called at the end.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if fmt is FileFormat.TEXT or fmt is FileFormat.CSV:
        return _iter_text(stream, fmt is FileFormat.CSV, min_length, max_length, chunk_size, on_progress)
    return _iter_sheet(stream, min_length, max_length, chunk_size, on_progress)


# --------------------------------------------------------------------------------------------------
# validation shared by all formats


def _collect(
    items: Iterable[tuple[int, str | InvalidNumber]],
    min_length: int,
    max_length: int,
    chunk_size: int,
) -> Iterator[tuple[list[str], int]]:
    """Validate ``(line, raw value)`` pairs; yield ``(chunk, line of its last number)``.

    A raw value may be a ready-made :class:`InvalidNumber` (a spreadsheet cell that is not a code):
    it is raised in file order, i.e. after any pending blank line before it.
    """
    chunk: list[str] = []
    first_blank = 0  # line of the first blank in the current run of blanks, 0 if none
    found = False
    line = 0
    for line, raw in items:
        if not isinstance(raw, str):
            if first_blank:
                raise InvalidNumber(first_blank, "empty")
            raise raw
        number = raw.strip()
        if not number:
            if not first_blank:
                first_blank = line
            continue
        if first_blank:
            raise InvalidNumber(first_blank, "empty")
        if not number.isprintable():  # one cheap C call gates the rare slow checks
            _check_unprintable(number, line)
        size = len(number)
        if size < min_length:
            raise InvalidNumber(line, f"shorter than {min_length} characters")
        if size > max_length:
            raise InvalidNumber(line, f"longer than {max_length} characters")
        chunk.append(number)
        if len(chunk) >= chunk_size:
            found = True
            yield chunk, line
            chunk = []
    if chunk:
        yield chunk, line
    elif not found:
        raise InvalidFile(reason="no numbers in file")


def _check_unprintable(number: str, line: int) -> None:
    if "\0" in number:
        raise InvalidFile(reason=f"NUL byte at line {line}")
    _check_utf8(number, line)
    if "\n" in number or "\r" in number:
        raise InvalidNumber(line, "contains a line break")


def _check_utf8(text: str, line: int) -> None:
    # Text is decoded with errors="surrogateescape": undecodable bytes became lone surrogates.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFile(reason=f"not UTF-8 at line {line}") from None


# --------------------------------------------------------------------------------------------------
# .txt and .csv


def _iter_text(
    stream: BinaryIO,
    is_csv: bool,
    min_length: int,
    max_length: int,
    chunk_size: int,
    on_progress: ProgressCallback | None,
) -> Iterator[list[str]]:
    counter: _CountingReader | None = None
    if stream.seekable():
        start = stream.tell()
        total = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
        source: BinaryIO | io.BufferedReader = stream
    else:
        start = total = 0
        counter = _CountingReader(stream)
        source = io.BufferedReader(counter)
    wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        items: Iterable[tuple[int, str | InvalidNumber]]
        items = _csv_first_fields(wrapper) if is_csv else enumerate(wrapper, 1)
        for chunk, _ in _collect(items, min_length, max_length, chunk_size):
            yield chunk
            if on_progress is not None and counter is None:
                on_progress(min(stream.tell() - start, total), total)
    finally:
        with contextlib.suppress(ValueError):  # the caller closed the stream before we finished
            wrapper.detach()
    if on_progress is not None:
        if counter is not None:
            total = counter.count
        on_progress(total, total)


def _csv_first_fields(wrapper: io.TextIOWrapper) -> Iterator[tuple[int, str]]:
    reader = csv.reader(_checked_lines(wrapper))
    line = 1  # physical line on which the next row starts
    try:
        for row in reader:
            yield line, (row[0] if row else "")
            line = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidFile(reason=f"malformed CSV at line {reader.line_num}: {exc}") from None


def _checked_lines(lines: Iterable[str]) -> Iterator[str]:
    """Every physical line, after checking it is valid UTF-8 without NUL (all columns count)."""
    for line_no, line in enumerate(lines, 1):
        if not line.isascii():
            _check_utf8(line, line_no)
        if "\0" in line:
            raise InvalidFile(reason=f"NUL byte at line {line_no}")
        yield line


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from a non-seekable stream (for the final progress report)."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.count += size
        return size


# --------------------------------------------------------------------------------------------------
# .xls and .xlsx


def _iter_sheet(
    stream: BinaryIO,
    min_length: int,
    max_length: int,
    chunk_size: int,
    on_progress: ProgressCallback | None,
) -> Iterator[list[str]]:
    rows = _load_first_sheet(stream)
    total = len(rows)
    for chunk, last_row in _collect(_first_cells(rows), min_length, max_length, chunk_size):
        yield chunk
        if on_progress is not None:
            on_progress(last_row, total)
    if on_progress is not None:
        on_progress(total, total)


def _load_first_sheet(stream: BinaryIO) -> Sequence[Sequence[object]]:
    try:
        with CalamineWorkbook.from_filelike(stream) as workbook:
            # skip_empty_area=False keeps leading empty rows AND columns, so index i is row i + 1
            # and cell 0 is column A. (iter_rows() keeps leading rows but drops leading columns.)
            rows: Sequence[Sequence[object]] = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except PasswordError:
        raise InvalidFile(reason="spreadsheet is password-protected") from None
    except CalamineError as exc:
        raise InvalidFile(reason=f"cannot read spreadsheet: {exc}") from None
    except BaseException as exc:
        # Corrupt .xls files can make calamine's Rust code panic; pyo3 turns that into
        # pyo3_runtime.PanicException, a BaseException that cannot be imported by name.
        if type(exc).__name__ != "PanicException":
            raise
        raise InvalidFile(reason="cannot read spreadsheet: corrupt file") from None
    return rows


def _first_cells(rows: Sequence[Sequence[object]]) -> Iterator[tuple[int, str | InvalidNumber]]:
    for row_no, row in enumerate(rows, 1):
        value = row[0] if row else ""
        yield row_no, (value if isinstance(value, str) else _cell_text(value, row_no))


def _cell_text(value: object, row_no: int) -> str | InvalidNumber:
    """A non-string cell as code text, or the error to report for it."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return InvalidNumber(row_no, "not a code: bool cell")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) >= _MAX_EXACT_FLOAT:
                return InvalidNumber(row_no, "number too large for a spreadsheet cell; store it as text")
            return str(int(value))  # 12345.0 -> "12345"
        if not math.isfinite(value):
            return InvalidNumber(row_no, "not a code: non-finite number")
        text = repr(value)  # shortest round-tripping form; positional unless tiny
        return format(decimal.Decimal(text), "f") if "e" in text else text
    return InvalidNumber(row_no, f"not a code: {type(value).__name__} cell")
