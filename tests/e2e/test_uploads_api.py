"""File uploads over HTTP, for promo codes (`promocodes/numbers/add`) and certificates
(`coupons/numbers/add`): formats, invalid files and numbers, duplicates, all-or-nothing, scale."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import openpyxl
import pytest
import xlwt

from conftest import LoyaltyClient


@dataclass(frozen=True)
class Kind:
    """What is uploaded, and how to look at it afterwards."""

    name: str
    min_length: int
    max_length: int

    async def upload(
        self, loyalty: LoyaltyClient, filename: str, content: bytes | BinaryIO, group: str = "Batch"
    ) -> dict[str, Any]:
        files = {"file": (filename, content)}
        if self.name == "promocodes":
            return await loyalty.call("promocodes/numbers/add", files=files, name=group, type="1")
        return await loyalty.call(
            "coupons/numbers/add",
            files=files,
            type="2",
            value="50",
            name=group,
            target_dep_id=loyalty.department.store_department_id,
            pin_code=loyalty.department.pin_code,
        )

    async def totals(self, loyalty: LoyaltyClient) -> dict[str, int]:
        """Each group's name and total_count."""
        if self.name == "promocodes":
            body = await loyalty.call("promocodes/groups/list")
            found = [*body["groups"]["enabled"], *body["groups"]["disabled"]]
        else:
            body = await loyalty.call("coupons/groups/list")
            found = body["groups"]
        assert body["status"] == "ok", body
        return {group["name"]: group["total_count"] for group in found}

    async def exists(self, loyalty: LoyaltyClient, number: str) -> bool:
        path = "promocodes/info" if self.name == "promocodes" else "coupons/numbers/status"
        body = await loyalty.call(path, number=number)
        assert body["status"] == "ok" or body["status_code"] in (-4100, -4200), body
        return body["status"] == "ok"


PROMOCODES = Kind("promocodes", min_length=1, max_length=128)
CERTIFICATES = Kind("certificates", min_length=2, max_length=255)


@pytest.fixture(params=[PROMOCODES, CERTIFICATES], ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    found: Kind = request.param
    return found


def lines(*numbers: str, end: str = "\n") -> bytes:
    return "".join(f"{n}{end}" for n in numbers).encode()


def xlsx(*cells: object) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row, value in enumerate(cells, 1):
        sheet.cell(row=row, column=1, value=value)  # type: ignore[arg-type]
    sheet.cell(row=1, column=2, value="second column is ignored")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xls(*cells: object) -> bytes:
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Numbers")
    for row, value in enumerate(cells):
        if value is not None:
            sheet.write(row, 0, value)
    sheet.write(0, 1, "second column is ignored")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def error(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    return body["status"], body["status_code"], body["message"]


INVALID_FILE = ("error", -4201, "Invalid file")
INVALID_NUMBER = ("error", -4203, "Invalid number")
DUPLICATES = ("error", -4202, "Duplicate numbers in file")


async def assert_stored_exactly(kind: Kind, loyalty: LoyaltyClient, *numbers: str) -> None:
    """The numbers are stored as these exact strings: uploading them again is refused as duplicates.

    (A look-up cannot show this, since parameters are stripped; the database's unique key can.)
    """
    body = await kind.upload(loyalty, "again.txt", lines(*numbers), group="Batch")
    assert (error(body), sorted(body["duplicates"])) == (DUPLICATES, sorted(numbers))


class TestTextFiles:
    async def test_a_txt_file_has_one_number_a_line(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"AA1\nAA2\nAA3\n")

        assert (body["status"], body["imported_count"]) == ("ok", 3)
        assert await kind.totals(loyalty) == {"Batch": 3}
        assert [await kind.exists(loyalty, n) for n in ("AA1", "AA2", "AA3", "AA4")] == [
            True,
            True,
            True,
            False,
        ]

    async def test_the_last_line_needs_no_line_end(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"AA1\nAA2")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_crlf_line_ends_are_not_part_of_the_numbers(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        body = await kind.upload(loyalty, "codes.txt", lines("AA1", "AA2", end="\r\n"))

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_surrounding_whitespace_is_not_part_of_the_numbers(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"  AA1\t\nAA2  \n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_blank_lines_at_the_end_are_ignored(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"AA1\nAA2\n\n\r\n  \n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)

    async def test_utf8_letters_are_kept(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", lines("ПОДАРОК-1", "礼物-2"))

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        assert await kind.exists(loyalty, "ПОДАРОК-1")
        assert await kind.exists(loyalty, "礼物-2")

    async def test_the_extension_is_read_case_insensitively(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "CODES.TXT", b"AA1\n")

        assert (body["status"], body["imported_count"]) == ("ok", 1)

    async def test_a_txt_file_may_start_with_a_bom(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"\xef\xbb\xbfAA1\nAA2\n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")


class TestCsvFiles:
    async def test_takes_the_first_field_of_each_row(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.csv", b"AA1,first\nAA2,second\nAA3\n")

        assert (body["status"], body["imported_count"]) == ("ok", 3)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2", "AA3")

    async def test_a_bom_is_not_part_of_the_first_number(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.csv", b"\xef\xbb\xbfAA1,first\nAA2,second\n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_crlf_rows_are_read_without_their_line_ends(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        body = await kind.upload(loyalty, "codes.csv", b"\xef\xbb\xbfAA1,x\r\nAA2,y\r\n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_a_semicolon_separated_excel_export_takes_the_first_field(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        """Excel in a decimal-comma locale (ru, de, ...) saves "CSV" with semicolons."""
        body = await kind.upload(loyalty, "codes.csv", b"\xef\xbb\xbfAA1;10,5\r\nAA2;7,25\r\n")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "AA1", "AA2")

    async def test_a_quoted_field_may_hold_a_comma(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.csv", b'"AA,1",x\nAA2,y\n')

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        assert await kind.exists(loyalty, "AA,1")


class TestSpreadsheets:
    @pytest.mark.parametrize(("filename", "build"), [("codes.xlsx", xlsx), ("codes.xls", xls)])
    async def test_reads_the_first_column_of_the_first_sheet(
        self, kind: Kind, loyalty: LoyaltyClient, filename: str, build: Any
    ) -> None:
        body = await kind.upload(loyalty, filename, build("AB-1", "AB-2", "AB-3"))

        assert (body["status"], body["imported_count"]) == ("ok", 3)
        assert await kind.totals(loyalty) == {"Batch": 3}
        await assert_stored_exactly(kind, loyalty, "AB-1", "AB-2", "AB-3")

    @pytest.mark.parametrize(("filename", "build"), [("codes.xlsx", xlsx), ("codes.xls", xls)])
    async def test_a_numeric_cell_is_its_integer_and_a_text_cell_keeps_its_zeros(
        self, kind: Kind, loyalty: LoyaltyClient, filename: str, build: Any
    ) -> None:
        body = await kind.upload(loyalty, filename, build(12345, "00123"))

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        await assert_stored_exactly(kind, loyalty, "12345", "00123")
        assert not await kind.exists(loyalty, "123")

    @pytest.mark.parametrize(("filename", "build"), [("codes.xlsx", xlsx), ("codes.xls", xls)])
    async def test_an_empty_row_before_a_number_is_refused_with_its_row(
        self, kind: Kind, loyalty: LoyaltyClient, filename: str, build: Any
    ) -> None:
        body = await kind.upload(loyalty, filename, build("AB-1", "AB-2", None, "AB-4"))

        assert (error(body), body["line"]) == (INVALID_NUMBER, 3)
        assert await kind.totals(loyalty) == {}

    async def test_a_corrupt_spreadsheet_is_an_invalid_file(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.xlsx", b"PK\x03\x04 this is not a zip archive")

        assert error(body) == INVALID_FILE
        assert await kind.totals(loyalty) == {}


class TestInvalidFiles:
    @pytest.mark.parametrize("filename", ["codes.pdf", "codes.docx", "codes", "codes.txt.exe"])
    async def test_an_unknown_extension_is_an_invalid_file(
        self, kind: Kind, loyalty: LoyaltyClient, filename: str
    ) -> None:
        body = await kind.upload(loyalty, filename, b"AA1\nAA2\n")

        assert error(body) == INVALID_FILE
        assert await kind.totals(loyalty) == {}

    @pytest.mark.parametrize("filename", ["codes.txt", "codes.csv"])
    async def test_bytes_that_are_not_utf8_are_an_invalid_file(
        self, kind: Kind, loyalty: LoyaltyClient, filename: str
    ) -> None:
        body = await kind.upload(loyalty, filename, b"AA1\nCAF\xc9-2\nAA3\n")

        assert error(body) == INVALID_FILE
        assert await kind.totals(loyalty) == {}
        assert not await kind.exists(loyalty, "AA1")

    @pytest.mark.parametrize("content", [b"", b"\n", b"\r\n  \n"], ids=["empty", "newline", "blank-lines"])
    async def test_a_file_without_numbers_is_an_invalid_file(
        self, kind: Kind, loyalty: LoyaltyClient, content: bytes
    ) -> None:
        body = await kind.upload(loyalty, "codes.txt", content)

        assert error(body) == INVALID_FILE
        assert await kind.totals(loyalty) == {}

    async def test_a_nul_byte_is_an_invalid_file(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", b"AA1\nAA\x002\n")

        assert error(body) == INVALID_FILE
        assert await kind.totals(loyalty) == {}


class TestInvalidNumbers:
    @pytest.mark.parametrize("blank", ["", "   ", "\t"], ids=["empty", "spaces", "tab"])
    async def test_a_blank_interior_line_is_refused_with_its_line(
        self, kind: Kind, loyalty: LoyaltyClient, blank: str
    ) -> None:
        body = await kind.upload(loyalty, "codes.txt", lines("AA1", blank, "AA3"))

        assert (error(body), body["line"]) == (INVALID_NUMBER, 2)
        assert await kind.totals(loyalty) == {}

    async def test_a_blank_interior_csv_row_is_refused_with_its_line(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        body = await kind.upload(loyalty, "codes.csv", lines("AA1,x", "AA2,y", ",z", "AA4,w"))

        assert (error(body), body["line"]) == (INVALID_NUMBER, 3)
        assert await kind.totals(loyalty) == {}

    async def test_a_number_one_longer_than_the_maximum_is_refused_with_its_line(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        too_long = "9" * (kind.max_length + 1)

        body = await kind.upload(loyalty, "codes.txt", lines("AA1", "AA2", too_long, "AA4"))

        assert (error(body), body["line"]) == (INVALID_NUMBER, 3)
        assert await kind.totals(loyalty) == {}

    async def test_a_number_of_the_maximum_length_is_accepted(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        longest = "9" * kind.max_length

        body = await kind.upload(loyalty, "codes.txt", lines("AA1", longest))

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        assert await kind.exists(loyalty, longest)

    async def test_the_maximum_counts_characters_not_bytes(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        longest = "Ж" * kind.max_length  # two bytes each in UTF-8

        body = await kind.upload(loyalty, "codes.txt", lines(longest))

        assert (body["status"], body["imported_count"]) == ("ok", 1)

    async def test_a_one_character_certificate_is_refused_with_its_line(self, loyalty: LoyaltyClient) -> None:
        body = await CERTIFICATES.upload(loyalty, "codes.txt", lines("AA1", "7", "AA3"))

        assert (error(body), body["line"]) == (INVALID_NUMBER, 2)
        assert await CERTIFICATES.totals(loyalty) == {}

    async def test_a_one_character_promo_code_is_accepted(self, loyalty: LoyaltyClient) -> None:
        body = await PROMOCODES.upload(loyalty, "codes.txt", lines("AA1", "7", "AA3"))

        assert (body["status"], body["imported_count"]) == ("ok", 3)
        assert await PROMOCODES.exists(loyalty, "7")


class TestDuplicates:
    async def test_a_number_repeated_in_the_file_is_refused(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        body = await kind.upload(loyalty, "codes.txt", lines("AA1", "AA2", "AA3", "AA2"))

        assert (error(body), body["duplicates"]) == (DUPLICATES, ["AA2"])
        assert await kind.totals(loyalty) == {}

    async def test_a_number_that_already_exists_is_refused(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        await kind.upload(loyalty, "first.txt", lines("AA1", "AA2"), group="Batch")

        body = await kind.upload(loyalty, "second.txt", lines("AA3", "AA2", "AA4"), group="Batch")

        assert (error(body), body["duplicates"]) == (DUPLICATES, ["AA2"])
        assert await kind.totals(loyalty) == {"Batch": 2}
        assert not await kind.exists(loyalty, "AA3")

    async def test_at_most_100_duplicates_are_listed(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        numbers = [f"DUP-{i:03d}" for i in range(150)]

        body = await kind.upload(loyalty, "codes.txt", lines(*numbers, *numbers))

        assert error(body) == DUPLICATES
        assert len(body["duplicates"]) == 100
        assert len(set(body["duplicates"])) == 100
        assert set(body["duplicates"]) <= set(numbers)
        assert await kind.totals(loyalty) == {}

    async def test_at_most_100_existing_numbers_are_listed(self, kind: Kind, loyalty: LoyaltyClient) -> None:
        numbers = [f"DUP-{i:03d}" for i in range(150)]
        await kind.upload(loyalty, "first.txt", lines(*numbers), group="Batch")

        body = await kind.upload(loyalty, "second.txt", lines("NEW-1", *numbers), group="Batch")

        assert error(body) == DUPLICATES
        assert len(body["duplicates"]) == 100
        assert len(set(body["duplicates"])) == 100
        assert set(body["duplicates"]) <= set(numbers)
        assert await kind.totals(loyalty) == {"Batch": 150}

    async def test_a_promo_code_may_repeat_in_another_group(self, loyalty: LoyaltyClient) -> None:
        await PROMOCODES.upload(loyalty, "first.txt", lines("AA1", "AA2"), group="Spring")

        body = await PROMOCODES.upload(loyalty, "second.txt", lines("AA2", "AA3"), group="Summer")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        assert await PROMOCODES.totals(loyalty) == {"Spring": 2, "Summer": 2}
        info = await loyalty.call("promocodes/info", number="AA2")
        assert sorted(n["group"]["name"] for n in info["numbers"]) == ["Spring", "Summer"]

    async def test_a_certificate_may_not_repeat_in_another_group(self, loyalty: LoyaltyClient) -> None:
        await CERTIFICATES.upload(loyalty, "first.txt", lines("AA1", "AA2"), group="Spring")

        body = await CERTIFICATES.upload(loyalty, "second.txt", lines("AA2", "AA3"), group="Summer")

        assert (error(body), body["duplicates"]) == (DUPLICATES, ["AA2"])
        assert await CERTIFICATES.totals(loyalty) == {"Spring": 2}


#: More lines than the importer sends to the database at once, so a failure near the end comes
#: after rows were already inserted: the all-or-nothing rule must take those back.
BIG = 120_000


def big_file(last: bytes) -> bytes:
    return lines(*(f"BIG-{i:06d}" for i in range(BIG))) + last + b"\n"


#: Failures that refuse any upload, whichever group it goes to: (last line, expected error).
FAILURES = {
    "invalid-number-at-the-end": (b"X" * 300, INVALID_NUMBER),
    "duplicate-at-the-end": (b"BIG-000000", DUPLICATES),
    "not-utf8-at-the-end": (b"BIG-\xff", INVALID_FILE),
}


class TestAllOrNothing:
    @pytest.mark.parametrize("failure", list(FAILURES))
    async def test_a_failed_upload_leaves_no_new_group_and_no_numbers(
        self, kind: Kind, loyalty: LoyaltyClient, failure: str
    ) -> None:
        last, expected = FAILURES[failure]
        await kind.upload(loyalty, "old.txt", lines("OLD-1", "OLD-2", "OLD-3"), group="Old")

        body = await kind.upload(loyalty, "new.txt", big_file(last), group="New")

        assert error(body) == expected
        assert await kind.totals(loyalty) == {"Old": 3}
        assert not await kind.exists(loyalty, "BIG-000000")
        assert not await kind.exists(loyalty, f"BIG-{BIG - 1:06d}")

    async def test_a_certificate_of_another_group_at_the_end_leaves_no_new_group(
        self, loyalty: LoyaltyClient
    ) -> None:
        await CERTIFICATES.upload(loyalty, "old.txt", lines("OLD-1", "OLD-2", "OLD-3"), group="Old")

        body = await CERTIFICATES.upload(loyalty, "new.txt", big_file(b"OLD-2"), group="New")

        assert (error(body), body["duplicates"]) == (DUPLICATES, ["OLD-2"])
        assert await CERTIFICATES.totals(loyalty) == {"Old": 3}
        assert not await CERTIFICATES.exists(loyalty, "BIG-000000")
        assert (await loyalty.call("coupons/numbers/status", number="OLD-2"))["group"]["name"] == "Old"

    @pytest.mark.parametrize("failure", [*FAILURES, "existing-number-at-the-end"])
    async def test_a_failed_append_leaves_the_promo_code_group_as_it_was(
        self, loyalty: LoyaltyClient, failure: str
    ) -> None:
        last, expected = FAILURES.get(failure, (b"OLD-2", DUPLICATES))
        await PROMOCODES.upload(loyalty, "old.txt", lines("OLD-1", "OLD-2", "OLD-3"), group="Old")

        body = await PROMOCODES.upload(loyalty, "more.txt", big_file(last), group="Old")

        assert error(body) == expected
        assert await PROMOCODES.totals(loyalty) == {"Old": 3}
        assert not await PROMOCODES.exists(loyalty, "BIG-000000")

    async def test_a_successful_upload_after_a_failed_one_imports_normally(
        self, kind: Kind, loyalty: LoyaltyClient
    ) -> None:
        failed = await kind.upload(loyalty, "new.txt", lines("AA1", "AA1"), group="New")
        assert error(failed) == DUPLICATES

        body = await kind.upload(loyalty, "new.txt", lines("AA1", "AA2"), group="New")

        assert (body["status"], body["imported_count"]) == ("ok", 2)
        assert await kind.totals(loyalty) == {"New": 2}


class TestLargeUpload:
    @pytest.mark.slow
    async def test_a_million_line_promo_code_file_imports_over_http(
        self, loyalty: LoyaltyClient, tmp_path: Path
    ) -> None:
        path = tmp_path / "million.txt"
        with path.open("w", encoding="ascii", newline="\n") as out:
            for start in range(0, 1_000_000, 100_000):
                out.write("".join(f"M{i:07d}\n" for i in range(start, start + 100_000)))

        with path.open("rb") as stream:  # httpx streams the open file: the test holds no copy
            body = await PROMOCODES.upload(loyalty, "million.txt", stream, group="Million")

        assert (body["status"], body["imported_count"]) == ("ok", 1_000_000)
        listed = await loyalty.call("promocodes/groups/list")
        [group] = listed["groups"]["enabled"]
        assert (group["name"], group["total_count"], group["unused_count"]) == (
            "Million",
            1_000_000,
            1_000_000,
        )
        assert await PROMOCODES.exists(loyalty, "M0000000")
        assert await PROMOCODES.exists(loyalty, "M0999999")
