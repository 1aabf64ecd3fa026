"""Unit tests for the upload file parsers (no database)."""

from __future__ import annotations

import csv
import datetime
import gc
import io
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

import openpyxl
import pytest
import xlwt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tessera.errors import InvalidFile, InvalidNumber
from tessera.imports import parsers
from tessera.imports.parsers import FileFormat, detect_format, iter_number_chunks

TXT, CSV, XLS, XLSX = FileFormat.TEXT, FileFormat.CSV, FileFormat.XLS, FileFormat.XLSX


@pytest.fixture(autouse=True, params=["default batches", "tiny batches"])
def batch_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run everything twice: also with batches of a line or a few, so that every line sits next to
    a batch boundary (the parser validates whole batches at once and only then goes line by line)."""
    if request.param == "tiny batches":
        monkeypatch.setattr(parsers, "_READ_HINT", 1)  # readlines(1): one line per batch
        monkeypatch.setattr(parsers, "_BATCH_ROWS", 2)


def parse(
    data: bytes | BinaryIO,
    fmt: FileFormat = TXT,
    *,
    min_length: int = 2,
    max_length: int = 255,
    chunk_size: int = 10_000,
) -> list[str]:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    chunks = iter_number_chunks(
        stream, fmt, min_length=min_length, max_length=max_length, chunk_size=chunk_size
    )
    return [number for chunk in chunks for number in chunk]


def invalid_number(data: bytes, fmt: FileFormat = TXT, **limits: int) -> tuple[int, str]:
    with pytest.raises(InvalidNumber) as caught:
        parse(data, fmt, **limits)
    assert caught.value.text == "Invalid number"
    return caught.value.line, caught.value.extra["reason"]


def invalid_file(data: bytes | BinaryIO, fmt: FileFormat = TXT, **limits: int) -> str:
    with pytest.raises(InvalidFile) as caught:
        parse(data, fmt, **limits)
    assert caught.value.text == "Invalid file"
    reason: str = caught.value.extra["reason"]
    return reason


def xlsx(cells: Sequence[object]) -> bytes:
    """A workbook whose column A holds ``cells`` from row 1 (None leaves the cell empty)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row, value in enumerate(cells, 1):
        if value is not None:
            sheet.cell(row=row, column=1, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xls(cells: Sequence[object]) -> bytes:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("codes")
    for row, value in enumerate(cells):
        if value is not None:
            sheet.write(row, 0, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# detect_format


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("codes.txt", TXT),
        ("CODES.TXT", TXT),
        ("codes.CsV", CSV),
        ("old.xls", XLS),
        ("new.XLSX", XLSX),
        ("my.codes.v2.csv", CSV),
        (r"C:\Users\me\codes.txt", TXT),
        (" padded.txt ", TXT),
    ],
)
def test_detect_format(filename: str, expected: FileFormat) -> None:
    assert detect_format(filename) is expected


@pytest.mark.parametrize("filename", [None, "", "codes", "codes.pdf", "codes.txt.gz", "codes.", "xlsx"])
def test_detect_format_rejects_other_files(filename: str | None) -> None:
    with pytest.raises(InvalidFile) as caught:
        detect_format(filename)
    assert caught.value.text == "Invalid file"
    assert caught.value.extra["reason"].startswith("unsupported file type")


# --------------------------------------------------------------------------------------------------
# text and csv basics


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_line_endings_and_bom(bom: bytes, newline: bytes, fmt: FileFormat) -> None:
    data = bom + newline.join([b"AB12", "ЖУК-42".encode(), b"  padded  ", b"last"])
    assert parse(data, fmt) == ["AB12", "ЖУК-42", "padded", "last"]


def test_mixed_line_endings() -> None:
    assert parse(b"aa\nbb\r\ncc\rdd") == ["aa", "bb", "cc", "dd"]


def test_txt_keeps_commas_and_quotes() -> None:
    assert parse(b'a,b\n"q"\n') == ["a,b", '"q"']


def test_csv_takes_first_field() -> None:
    data = b'code,name\n"AB,12",x\n"say ""hi""",y,z\n  spaced  ,\nplain\n'
    assert parse(data, CSV) == ["code", "AB,12", 'say "hi"', "spaced", "plain"]


def test_csv_from_excel_in_a_decimal_comma_locale_is_split_at_semicolons() -> None:
    data = b'code;value\r\nAB-1;10,5\r\n"AB;2";"7,25"\r\nAB-3;\r\nAB-4\r\n'
    assert parse(data, CSV) == ["code", "AB-1", "AB;2", "AB-3", "AB-4"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The separator right after the first field decides, whichever comes first.
        (b"AB,1;x\nCD,2;y\n", ["AB", "CD"]),
        (b"AB;1,x\nCD;2,y\n", ["AB", "CD"]),
        # Inside a quoted first field neither counts.
        (b'"A;B",1\nCD,2\n', ["A;B", "CD"]),
        (b'"A,B";1\nCD;2\n', ["A,B", "CD"]),
        # The first non-blank line decides for the whole file.
        (b"AB-1\nCD;2\n", ["AB-1", "CD;2"]),
    ],
)
def test_csv_separator_is_the_one_after_the_first_field(data: bytes, expected: list[str]) -> None:
    assert parse(data, CSV) == expected


def test_csv_quoted_newline_in_other_column_keeps_line_numbers() -> None:
    data = b'aa,"multi\nline\nnote"\nbb,x\n\ncc,y\n'
    # rows start at physical lines 1, 4, 5 (blank) and 6
    assert invalid_number(data, CSV) == (5, "empty")
    assert parse(data.replace(b"\n\ncc", b"\ncc"), CSV) == ["aa", "bb", "cc"]


def test_csv_line_break_inside_first_field_is_rejected() -> None:
    assert invalid_number(b'aa\n"bb\ncc",x\n', CSV) == (2, "contains a line break")
    assert invalid_number(b'aa\r\nbb\r\n"x\ry"\r\n', CSV) == (3, "contains a line break")


def test_lengths_count_code_points() -> None:
    assert parse("ЁЁ\n日本\n".encode(), min_length=2, max_length=2) == ["ЁЁ", "日本"]


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_too_long_and_too_short(fmt: FileFormat) -> None:
    data = b"abcd\nabcde\nabcdef\n"
    assert invalid_number(data, fmt, min_length=2, max_length=5) == (3, "longer than 5 characters")
    assert invalid_number(data, fmt, min_length=5, max_length=9) == (1, "shorter than 5 characters")


@pytest.mark.parametrize("fmt", [TXT, CSV])
@pytest.mark.parametrize("tail", [b"\n", b"\n\n\n", b"\r\n\r\n  \r\n", b"\n\t\n", b"\n,,\n,\n"])
def test_trailing_blank_lines_are_ignored(fmt: FileFormat, tail: bytes) -> None:
    if fmt is TXT and b"," in tail:
        tail = tail.replace(b",", b" ")
    assert parse(b"aa\nbb" + tail, fmt) == ["aa", "bb"]


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_interior_blank_line_is_an_error(fmt: FileFormat) -> None:
    assert invalid_number(b"aa\nbb\n\ncc\n", fmt) == (3, "empty")
    # a run of blanks is reported at its first line; whitespace-only counts as blank
    assert invalid_number(b"aa\n  \r\n\t\n\ncc\n\n", fmt) == (2, "empty")
    assert invalid_number(b"\naa\n", fmt) == (1, "empty")


def test_csv_empty_first_cell_is_blank() -> None:
    assert invalid_number(b'aa,1\n,2\n"",3\nbb,4\n', CSV) == (2, "empty")


@pytest.mark.parametrize("fmt", [TXT, CSV])
@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n", b"  \r\n\t\r\n"])
def test_no_numbers(fmt: FileFormat, data: bytes) -> None:
    assert invalid_file(data, fmt) == "no numbers in file"


def test_csv_without_first_column_values() -> None:
    assert invalid_file(b",a\n,b\n", CSV) == "no numbers in file"


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_not_utf8(fmt: FileFormat) -> None:
    data = "first\nsecond\nтретий\n".encode("cp1251")
    assert invalid_file(data, fmt) == "not UTF-8 at line 3"


def test_not_utf8_in_another_csv_column() -> None:
    assert invalid_file("aa,x\nbb,ü\n".encode("latin-1"), CSV) == "not UTF-8 at line 2"


def test_not_utf8_truncated_sequence_at_end() -> None:
    assert invalid_file("aa\nbb\nЖ".encode()[:-1]) == "not UTF-8 at line 3"


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_nul_byte(fmt: FileFormat) -> None:
    assert invalid_file(b"aa\nb\x00b\n", fmt) == "NUL byte at line 2"
    assert invalid_file(b"aa,x\x00\n", fmt) == "NUL byte at line 1"


def test_malformed_csv() -> None:
    reason = invalid_file(b"aa\n" + b'"' + b"x" * 200_000 + b'"\n', CSV)
    assert reason.startswith("malformed CSV at line 2")


def test_other_unprintable_characters_are_kept() -> None:
    assert parse("a\x0bb\nc\u2028d\ne\x85f\n".encode()) == ["a\x0bb", "c\u2028d", "e\x85f"]


# --------------------------------------------------------------------------------------------------
# big files: errors deep inside still name the exact line


def big(lines: int) -> list[str]:
    return [f"CODE{i:08d}" for i in range(lines)]


@pytest.mark.parametrize("fmt", [TXT, CSV])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_errors_deep_in_a_big_file(fmt: FileFormat, newline: str) -> None:
    numbers = big(15_000)
    assert parse(newline.join(numbers).encode(), fmt) == numbers

    blank = [*numbers[:7_000], "", *numbers[7_000:]]
    assert invalid_number(newline.join(blank).encode(), fmt) == (7_001, "empty")

    long = [*numbers[:11_234], "X" * 300, *numbers[11_234:]]
    assert invalid_number(newline.join(long).encode(), fmt) == (11_235, "longer than 255 characters")

    data = newline.join(numbers).encode()
    broken = data.replace(b"CODE00009333", b"CODE\xff0009333")
    assert invalid_file(broken, fmt) == "not UTF-8 at line 9334"


def test_csv_switches_to_the_csv_module_at_the_first_quote() -> None:
    numbers = big(12_000)
    lines = [*numbers[:8_000], '"QUOTED,1",x', *numbers[8_000:10_000], '"MULTI\nLINE"', "zz"]
    data = "\n".join(lines).encode()
    assert invalid_number(data, CSV) == (10_002, "contains a line break")
    lines[-2] = 'nn,"multi\nline"'
    lines.append("")
    lines.append("yy")
    data = "\n".join(lines).encode()
    # 8,000 + 1 + 2,000 lines, then a row over two lines (10,002-10,003), zz, blank at 10,005
    assert invalid_number(data, CSV) == (10_005, "empty")
    assert parse(data.replace(b"\n\nyy", b"\nyy"), CSV) == [
        *numbers[:8_000],
        "QUOTED,1",
        *numbers[8_000:10_000],
        "nn",
        "zz",
        "yy",
    ]


# --------------------------------------------------------------------------------------------------
# chunks, progress, streams


@pytest.mark.parametrize("fmt", [TXT, CSV, XLSX])
def test_chunking_and_progress(fmt: FileFormat) -> None:
    numbers = [f"N{i:03d}" for i in range(10)]
    data = xlsx(numbers) if fmt is XLSX else ("\n".join(numbers) + "\n\n").encode()
    progress: list[tuple[int, int]] = []
    chunks = list(
        iter_number_chunks(
            io.BytesIO(data),
            fmt,
            min_length=2,
            max_length=10,
            chunk_size=3,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    )
    assert [len(chunk) for chunk in chunks] == [3, 3, 3, 1]
    assert [n for chunk in chunks for n in chunk] == numbers
    assert 1 <= len(progress) <= len(chunks) + 1
    done, total = progress[-1]
    assert done == total
    assert total == (10 if fmt is XLSX else len(data))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert all(t == total for _, t in progress)


def test_chunk_sizes_over_many_batches() -> None:
    numbers = big(25_001)
    chunks = list(
        iter_number_chunks(io.BytesIO("\n".join(numbers).encode()), TXT, min_length=2, max_length=20)
    )
    assert [len(chunk) for chunk in chunks] == [10_000, 10_000, 5_001]
    assert [n for chunk in chunks for n in chunk] == numbers


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        iter_number_chunks(io.BytesIO(b"aa"), TXT, min_length=1, max_length=9, chunk_size=0)


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_stream_stays_open(fmt: FileFormat) -> None:
    stream = io.BytesIO(b"aa\nbb\n")
    assert parse(stream, fmt) == ["aa", "bb"]
    assert not stream.closed

    stream = io.BytesIO(b"aa\n\nbb\n")
    with pytest.raises(InvalidNumber):
        parse(stream, fmt)
    assert not stream.closed

    stream = io.BytesIO(b"aa\nbb\n" * 10)
    chunks = iter_number_chunks(stream, fmt, min_length=1, max_length=9, chunk_size=2)
    assert next(chunks) == ["aa", "bb"]
    del chunks  # abandoned half way: the generator is finalized
    gc.collect()
    assert not stream.closed
    stream.seek(0)  # and still usable, e.g. for a second pass
    assert parse(stream, fmt) == ["aa", "bb"] * 10


def test_reads_from_the_current_position() -> None:
    stream = io.BytesIO(b"skipped\naa\nbb\n")
    stream.seek(8)
    progress: list[tuple[int, int]] = []
    chunks = iter_number_chunks(
        stream, TXT, min_length=1, max_length=9, on_progress=lambda d, t: progress.append((d, t))
    )
    assert list(chunks) == [["aa", "bb"]]
    assert progress[-1] == (6, 6)


def test_spooled_temporary_file() -> None:
    numbers = big(20_000)
    with tempfile.SpooledTemporaryFile(max_size=1024) as spooled:  # rolled over to disk
        spooled.write(("\n".join(numbers)).encode())
        spooled.seek(0)
        assert parse(spooled, CSV) == numbers  # type: ignore[arg-type]
        assert not spooled.closed


class NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 100))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("fmt", [TXT, CSV])
def test_non_seekable_stream(fmt: FileFormat) -> None:
    numbers = big(5_000)
    data = "\n".join(numbers).encode()
    progress: list[tuple[int, int]] = []
    stream = NonSeekable(data)
    chunks = iter_number_chunks(
        stream,  # type: ignore[arg-type]
        fmt,
        min_length=2,
        max_length=20,
        chunk_size=1000,
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert [n for chunk in chunks for n in chunk] == numbers
    assert progress == [(len(data), len(data))]
    assert not stream.closed


# --------------------------------------------------------------------------------------------------
# spreadsheets


def test_xlsx_values() -> None:
    data = xlsx([12345, 12345.0, "00123", "  text  ", 1.5, -7, 1e-7, "ДОК-1", 9007199254740991])
    assert parse(data, XLSX) == [
        "12345",
        "12345",
        "00123",
        "text",
        "1.5",
        "-7",
        "0.0000001",
        "ДОК-1",
        "9007199254740991",
    ]


def test_xlsx_extension_does_not_matter() -> None:
    assert parse(xlsx(["aa"]), XLS) == ["aa"]
    assert parse(xls(["aa"]), XLSX) == ["aa"]


def test_xlsx_blank_rows() -> None:
    assert invalid_number(xlsx(["aa", "bb", None, "cc"]), XLSX) == (3, "empty")
    assert invalid_number(xlsx(["aa", "   ", "cc"]), XLSX) == (2, "empty")
    # leading empty rows keep the real row numbers
    assert invalid_number(xlsx([None, None, "aa"]), XLSX) == (1, "empty")
    assert parse(xlsx(["aa", "bb", None, "", "  "]), XLSX) == ["aa", "bb"]


def test_xlsx_trailing_formatted_rows_are_ignored() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "aa"
    sheet["A2"] = "bb"
    sheet["A7"].font = openpyxl.styles.Font(bold=True)
    sheet["B9"] = "a note in another column"
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert parse(buffer.getvalue(), XLSX) == ["aa", "bb"]


def test_xlsx_reads_column_a_only() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["aa", "ignored"])
    sheet.append(["bb", 1])
    sheet["C5"] = "far away"
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert parse(buffer.getvalue(), XLSX) == ["aa", "bb"]

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["B1"] = "column B only"
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert invalid_file(buffer.getvalue(), XLSX) == "no numbers in file"


@pytest.mark.parametrize(
    ("cell", "kind"),
    [
        (datetime.date(2024, 5, 1), "date"),
        (datetime.datetime(2024, 5, 1, 12, 30), "datetime"),
        (datetime.time(12, 30), "time"),
        (True, "bool"),
    ],
)
def test_xlsx_cells_that_are_not_codes(cell: object, kind: str) -> None:
    assert invalid_number(xlsx(["aa", cell, "bb"]), XLSX) == (2, f"not a code: {kind} cell")


def test_xlsx_blank_row_is_reported_before_a_later_bad_cell() -> None:
    assert invalid_number(xlsx(["aa", None, datetime.date(2024, 1, 1)]), XLSX) == (2, "empty")


def test_xlsx_number_too_large() -> None:
    line, reason = invalid_number(xlsx(["aa", 2**53]), XLSX)
    assert (line, reason) == (2, "number too large for a spreadsheet cell; store it as text")


def test_xlsx_lengths_and_line_breaks() -> None:
    assert invalid_number(xlsx(["abc", "a"]), XLSX) == (2, "shorter than 2 characters")
    assert invalid_number(xlsx(["abc", 123456]), XLSX, max_length=5) == (2, "longer than 5 characters")
    assert invalid_number(xlsx(["abc", "a\nb"]), XLSX) == (2, "contains a line break")


def test_empty_workbook() -> None:
    assert invalid_file(xlsx([]), XLSX) == "no numbers in file"


def test_xls_values() -> None:
    assert parse(xls([12345, "00123", 1.5, 12345.0, " x1 "]), XLS) == ["12345", "00123", "1.5", "12345", "x1"]


def test_xls_blank_row_and_bad_cell() -> None:
    assert invalid_number(xls(["aa", None, "bb"]), XLS) == (2, "empty")
    assert invalid_number(xls(["aa", True]), XLS) == (2, "not a code: bool cell")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a spreadsheet at all",
        b"PK\x03\x04" + b"\x00" * 200,
        b"aa,bb\n",
    ],
)
def test_unreadable_spreadsheet(data: bytes) -> None:
    assert invalid_file(data, XLSX).startswith("cannot read spreadsheet")


def test_corrupt_xlsx() -> None:
    good = xlsx(["aa", "bb"])
    assert invalid_file(good[: len(good) // 2], XLSX).startswith("cannot read spreadsheet")
    damaged = bytearray(good)
    for offset in range(200, len(damaged), 97):
        damaged[offset] ^= 0x5A
    assert invalid_file(bytes(damaged), XLSX).startswith("cannot read spreadsheet")


def test_corrupt_xls_that_makes_calamine_panic() -> None:
    good = xls([f"C{i}" for i in range(50)])
    # calamine 0.9 panics on this truncation (PanicException, a BaseException); other versions
    # may raise CalamineError instead: either way it must come out as InvalidFile.
    assert invalid_file(good[: len(good) * 3 // 4], XLS).startswith("cannot read spreadsheet")


def test_spreadsheet_stream_stays_open() -> None:
    stream = io.BytesIO(xlsx(["aa"]))
    assert parse(stream, XLSX) == ["aa"]
    assert not stream.closed


# --------------------------------------------------------------------------------------------------
# properties

# Anything but line breaks, NUL, surrogates and U+FEFF (which utf-8-sig would eat at the start).
TEXT_CHARS = st.characters(codec="utf-8", exclude_characters="\r\n\x00\ufeff")
CODE_ALPHABET = st.one_of(
    st.sampled_from("ABCXYZ0123456789-_/.#ÄÖßЖЁжёЯ日本€ "),
    TEXT_CHARS,
)


def numbers_from(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    number = st.text(alphabet, min_size=2, max_size=255).filter(lambda s: s == s.strip() and len(s) >= 2)
    return st.lists(number, min_size=1, max_size=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    numbers=numbers_from(CODE_ALPHABET),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    trailing=st.integers(min_value=0, max_value=3),
    chunk_size=st.integers(min_value=1, max_value=50),
)
def test_txt_round_trip(numbers: list[str], newline: str, bom: bool, trailing: int, chunk_size: int) -> None:
    text = newline.join(numbers) + newline * trailing
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    assert parse(data, TXT, chunk_size=chunk_size) == numbers


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    numbers=numbers_from(st.one_of(CODE_ALPHABET, st.sampled_from(",\"' ;\t"))),
    others=st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8), max_size=3),
    lineterminator=st.sampled_from(["\r\n", "\n"]),
    quote_all=st.booleans(),
    bom=st.booleans(),
    trailing=st.integers(min_value=0, max_value=2),
)
def test_csv_round_trip(
    numbers: list[str], others: list[str], lineterminator: str, quote_all: bool, bom: bool, trailing: int
) -> None:
    if lineterminator == "\n" and not quote_all:
        # csv.writer only quotes characters of its own lineterminator: it would write this bare
        # CR unquoted, and a bare CR ends a row for csv.reader (and for us).
        others = [other.replace("\r", "") for other in others]
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer, lineterminator=lineterminator, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    for number in numbers:
        writer.writerow([number, *others])  # other columns may hold anything, line breaks included
    first_line = buffer.getvalue().split(lineterminator, 1)[0]
    # An unquoted first number holding a semicolon reads as a semicolon-separated export (see
    # test_csv_from_excel_in_a_decimal_comma_locale_is_split_at_semicolons): by design.
    assume(parsers._csv_delimiter([first_line]) == ",")
    data = (b"\xef\xbb\xbf" if bom else b"") + (buffer.getvalue() + lineterminator * trailing).encode()
    assert parse(data, CSV) == numbers


@settings(max_examples=100, deadline=None)
@given(
    numbers=numbers_from(CODE_ALPHABET),
    position=st.integers(min_value=0),
    defect=st.sampled_from(["blank", "short", "long"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_txt_error_line_numbers(numbers: list[str], position: int, defect: str, newline: str) -> None:
    index = position % (len(numbers) + 1)
    bad = {"blank": " ", "short": "x", "long": "y" * 256}[defect]
    lines = [*numbers[:index], bad, *numbers[index:], "zz"]
    expected = {
        "blank": "empty",
        "short": "shorter than 2 characters",
        "long": "longer than 255 characters",
    }[defect]
    assert invalid_number(newline.join(lines).encode()) == (index + 1, expected)


@settings(max_examples=25, deadline=None)
@given(
    cells=st.lists(
        st.one_of(
            st.text(st.sampled_from("ABCXYZ0123456789-_ ÄЖё日"), min_size=2, max_size=30).filter(
                lambda s: s == s.strip() and len(s) >= 2
            ),
            st.integers(min_value=10, max_value=2**53 - 1),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_xlsx_round_trip(cells: list[str | int]) -> None:
    assert parse(xlsx(cells), XLSX) == [str(cell) for cell in cells]
