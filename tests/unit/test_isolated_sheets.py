"""Spreadsheets are parsed in a child process, so a hostile file cannot take the server down."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from tessera import errors
from tessera.imports.isolated import iter_sheet_chunks
from tessera.imports.parsers import FileFormat, iter_number_chunks

DATA = Path(__file__).parent.parent / "data"


def xlsx(*cells: object) -> io.BytesIO:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row, value in enumerate(cells, start=1):
        sheet.cell(row=row, column=1, value=value)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    return buffer


class TestIterSheetChunks:
    def test_gives_the_same_chunks_as_parsing_in_process(self) -> None:
        cells = [12345, "00123", "Код-7", 12345.0 + 1]
        isolated = list(
            iter_sheet_chunks(xlsx(*cells), FileFormat.XLSX, min_length=1, max_length=128, chunk_size=3)
        )
        direct = list(
            iter_number_chunks(xlsx(*cells), FileFormat.XLSX, min_length=1, max_length=128, chunk_size=3)
        )
        assert isolated == direct == [["12345", "00123", "Код-7"], ["12346"]]

    def test_an_invalid_number_keeps_its_row(self) -> None:
        with pytest.raises(errors.InvalidNumber) as caught:
            list(
                iter_sheet_chunks(
                    xlsx("A1", "B" * 129), FileFormat.XLSX, min_length=1, max_length=128, chunk_size=10
                )
            )
        assert caught.value.line == 2

    def test_progress_reaches_the_total(self) -> None:
        seen: list[tuple[int, int]] = []
        list(
            iter_sheet_chunks(
                xlsx("A1", "A2", "A3"), FileFormat.XLSX, min_length=1, max_length=128, chunk_size=2,
                on_progress=lambda done, total: seen.append((done, total)),
            )
        )  # fmt: skip
        assert seen[-1] == (3, 3)

    def test_a_file_that_aborts_the_reader_is_an_invalid_file_and_this_process_lives(self) -> None:
        # This .xls makes calamine 0.9 try to allocate ~342 GB and abort its process.
        with (DATA / "calamine_abort.xls").open("rb") as stream, pytest.raises(errors.InvalidFile) as caught:
            list(iter_sheet_chunks(stream, FileFormat.XLS, min_length=1, max_length=128, chunk_size=10))
        assert caught.value.extra["reason"] == "the spreadsheet could not be read: its reader crashed"
