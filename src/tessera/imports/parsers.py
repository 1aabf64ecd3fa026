"""Pure parsers for uploaded code / certificate files (.txt, .csv, .xls, .xlsx).

Nothing here touches the database: :func:`iter_number_chunks` turns an uploaded file into lists of
validated numbers, in file order, and raises :class:`~tessera.errors.InvalidFile` or
:class:`~tessera.errors.InvalidNumber` as soon as it meets something it cannot accept. Chunks are
produced lazily, so a caller that stores them one by one must be ready to roll back when a later
chunk raises.

Text formats are streamed (a 1,000,000-line file is never held in memory as a whole) and validated
a batch of lines at a time with C-level string operations; the per-line Python loop only runs for
a batch that has something wrong in it (so that the error names the right line). Spreadsheets are
loaded whole by python-calamine.

Line numbers are 1-based. For .txt they count physical lines (LF, CRLF or a lone CR end a line); for
.csv they are the physical line on which the row starts; for spreadsheets they are the real sheet
row numbers (row 1 is the first row of the sheet even when it is empty).

Warning: python-calamine (0.9) is not robust against hostile .xls files: some corrupt files make its
Rust code panic (mapped to ``InvalidFile`` here), and some make it attempt a huge allocation, which
aborts the whole Python process. Parse spreadsheets in a disposable, memory-limited worker process
if uploads are untrusted.
"""

from __future__ import annotations

import contextlib
import csv
import decimal
import enum
import io
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from tessera.errors import InvalidFile, InvalidNumber

__all__ = ["FileFormat", "ProgressCallback", "detect_format", "iter_number_chunks"]

#: ``on_progress(done, total)``: bytes for .txt/.csv, rows for spreadsheets.
ProgressCallback = Callable[[int, int], None]

#: Integral floats at or above this magnitude may already have lost digits.
_MAX_EXACT_FLOAT = 2**53
#: Text is read ``readlines(_READ_HINT)`` at a time (characters, roughly).
_READ_HINT = 1 << 16
#: Rows per batch for csv rows that need the csv module, and for spreadsheets.
_BATCH_ROWS = 4096

#: A batch of raw values: their line numbers, the values (unstripped), and an error that comes
#: right after the last value (raised after the values, so that errors are reported in file order).
_Batch = tuple[Sequence[int], list[str], InvalidNumber | None]


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
    the file. The stream is read from its current position and is left open. Nothing is read
    before the first ``next()``; every error is raised from ``next()``.

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
    batches: Iterable[_Batch], min_length: int, max_length: int, chunk_size: int
) -> Iterator[tuple[list[str], int]]:
    """Validate batches of raw values; yield ``(chunk, last line read so far)``."""
    chunk: list[str] = []
    first_blank = 0  # line of the first blank in the current run of blanks, 0 if none
    found = False
    last_line = 0
    shortest = max(min_length, 1)
    for lines, values, error in batches:
        numbers = list(map(str.strip, values))
        if numbers:
            last_line = lines[-1]
            lengths = list(map(len, numbers))
            if (
                not first_blank
                and min(lengths) >= shortest  # also rules out blanks
                and max(lengths) <= max_length
                and all(map(str.isprintable, numbers))
            ):
                chunk += numbers  # the common case: nothing to look at line by line
            else:
                first_blank = _collect_slowly(lines, numbers, chunk, first_blank, min_length, max_length)
        if error is not None:
            if first_blank:
                raise InvalidNumber(first_blank, "empty")
            raise error
        if len(chunk) >= chunk_size:
            found = True
            full = len(chunk) - len(chunk) % chunk_size
            for start in range(0, full, chunk_size):
                yield chunk[start : start + chunk_size], last_line
            del chunk[:full]
    if chunk:
        yield chunk, last_line
    elif not found:
        raise InvalidFile(reason="no numbers in file")


def _collect_slowly(
    lines: Sequence[int],
    numbers: list[str],
    chunk: list[str],
    first_blank: int,
    min_length: int,
    max_length: int,
) -> int:
    """Line-by-line version of the checks in :func:`_collect`; returns the new ``first_blank``."""
    for line, number in zip(lines, numbers, strict=True):
        if not number:
            if not first_blank:
                first_blank = line
            continue
        if first_blank:
            raise InvalidNumber(first_blank, "empty")
        if "\n" in number or "\r" in number:
            raise InvalidNumber(line, "contains a line break")
        size = len(number)
        if size < min_length:
            raise InvalidNumber(line, f"shorter than {min_length} characters")
        if size > max_length:
            raise InvalidNumber(line, f"longer than {max_length} characters")
        chunk.append(number)
    return first_blank


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
    # surrogateescape: undecodable bytes become lone surrogates, found per batch by _read_lines,
    # which can then name the line (a strict decoder fails somewhere in an 8 KiB read-ahead).
    wrapper = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        batches = _read_lines(wrapper)
        rows = _csv_batches(batches) if is_csv else _text_batches(batches)
        for chunk, _ in _collect(rows, min_length, max_length, chunk_size):
            yield chunk
            if on_progress is not None and counter is None:
                on_progress(min(stream.tell() - start, total), total)
    finally:
        # detach() leaves the caller's stream open; it fails if the caller closed it already
        with contextlib.suppress(ValueError):
            wrapper.detach()
    if on_progress is not None:
        if counter is not None:
            total = counter.count
        on_progress(total, total)


def _read_lines(wrapper: io.TextIOWrapper) -> Iterator[tuple[int, list[str], bool]]:
    """Batches of physical lines (with their endings) as ``(first line number, lines, has_quote)``.

    Every line is checked to be valid UTF-8 without NUL characters, whatever column it is in.
    """
    first = 1
    while lines := wrapper.readlines(_READ_HINT):
        text = "".join(lines)
        if "\0" in text:
            raise InvalidFile(reason=f"NUL byte at line {first + _line_index(lines, text.index(chr(0)))}")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidFile(
                    reason=f"not UTF-8 at line {first + _line_index(lines, exc.start)}"
                ) from None
        yield first, lines, '"' in text
        first += len(lines)


def _line_index(lines: list[str], position: int) -> int:
    """Index of the line holding character ``position`` of ``"".join(lines)``."""
    end = 0
    for index, line in enumerate(lines):
        end += len(line)
        if position < end:
            return index
    raise AssertionError("position beyond the text")  # pragma: no cover


def _text_batches(batches: Iterable[tuple[int, list[str], bool]]) -> Iterator[_Batch]:
    for first, lines, _ in batches:
        yield range(first, first + len(lines)), lines, None


_LEADING_QUOTED_FIELD = re.compile(r'\s*"(?:[^"]|"")*"')


def _csv_delimiter(lines: list[str]) -> str:
    """``;`` for the exports of Excel in locales with a decimal comma (Russian, German, ...),
    whose rows look like ``CODE-1;10,5``: the separator after the first field of the first
    non-blank line decides, whichever of ``;`` and ``,`` comes first."""
    for line in lines:
        if line.strip():
            quoted = _LEADING_QUOTED_FIELD.match(line)
            rest = line[quoted.end() :] if quoted else line
            semicolon, comma = rest.find(";"), rest.find(",")
            return ";" if semicolon >= 0 and (comma < 0 or semicolon < comma) else ","
    return ","


def _csv_batches(batches: Iterator[tuple[int, list[str], bool]]) -> Iterator[_Batch]:
    """First fields of csv rows (excel dialect: double quotes; comma or semicolon)."""
    delimiter: str | None = None
    for first, lines, has_quote in batches:
        if delimiter is None:
            delimiter = _csv_delimiter(lines)
        if not has_quote:
            # Without quotes every line is one row and the csv module would just split it.
            yield range(first, first + len(lines)), [line.partition(delimiter)[0] for line in lines], None
            continue
        # From the first quote on, quoted fields may span lines: hand the rest to the csv module.
        rest = itertools.chain(lines, itertools.chain.from_iterable(more for _, more, _ in batches))
        yield from _csv_module_batches(rest, first - 1, delimiter)
        return


def _csv_module_batches(lines: Iterator[str], offset: int, delimiter: str) -> Iterator[_Batch]:
    reader = csv.reader(lines, delimiter=delimiter)
    line = offset + 1  # physical line on which the next row starts
    try:
        while True:
            starts: list[int] = []
            values: list[str] = []
            for row in itertools.islice(reader, _BATCH_ROWS):
                starts.append(line)
                values.append(row[0] if row else "")
                line = offset + reader.line_num + 1
            if not values:
                return
            yield starts, values, None
    except csv.Error as exc:
        raise InvalidFile(reason=f"malformed CSV at line {offset + reader.line_num}: {exc}") from None


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
    for chunk, last_row in _collect(_sheet_batches(rows), min_length, max_length, chunk_size):
        yield chunk
        if on_progress is not None:
            on_progress(last_row, total)
    if on_progress is not None:
        on_progress(total, total)


def _load_first_sheet(stream: BinaryIO) -> Sequence[Sequence[object]]:
    try:
        with CalamineWorkbook.from_filelike(stream) as workbook:
            # skip_empty_area=False keeps leading empty rows AND columns, so rows[i] is sheet row
            # i + 1 and cell 0 is column A. (iter_rows() keeps leading rows but drops columns.)
            rows: Sequence[Sequence[object]] = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except PasswordError:
        raise InvalidFile(reason="spreadsheet is password-protected") from None
    except CalamineError as exc:
        raise InvalidFile(reason=f"cannot read spreadsheet: {exc}") from None
    except BaseException as exc:
        # Corrupt .xls files can make calamine's Rust code panic; pyo3 raises that as
        # pyo3_runtime.PanicException, a BaseException subclass that cannot be imported.
        if type(exc).__name__ != "PanicException":
            raise
        raise InvalidFile(reason="cannot read spreadsheet: corrupt file") from None
    return rows


def _sheet_batches(rows: Sequence[Sequence[object]]) -> Iterator[_Batch]:
    for first in range(0, len(rows), _BATCH_ROWS):
        values: list[str] = []
        for row in rows[first : first + _BATCH_ROWS]:
            value = row[0] if row else ""
            if not isinstance(value, str):
                value = _cell_text(value, first + len(values) + 1)
                if isinstance(value, InvalidNumber):
                    yield range(first + 1, first + len(values) + 1), values, value
                    return
            values.append(value)
        yield range(first + 1, first + len(values) + 1), values, None


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
        text = repr(value)  # the shortest form that round-trips; positional unless tiny
        return format(decimal.Decimal(text), "f") if "e" in text else text
    return InvalidNumber(row_no, f"not a code: {type(value).__name__} cell")
