"""The bulk import against real databases: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tessera import errors
from tessera.certificates import service as certificates
from tessera.certificates.models import Certificate, CertificateGroup
from tessera.db import Database
from tessera.imports.parsers import FileFormat
from tessera.promocodes import service as promocodes
from tessera.promocodes.models import Promocode, PromocodeGroup
from tessera.tenancy import service as tenancy


def text_file(*numbers: str) -> io.BytesIO:
    return io.BytesIO("".join(f"{n}\n" for n in numbers).encode())


async def code_count(database: Database) -> int:
    async with database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(Promocode)) or 0)


class TestImportCodes:
    async def test_creates_the_group_and_every_code_available(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            group, count = await promocodes.import_codes(
                session,
                department.partner_id,
                name="Summer",
                stream=text_file("A1", "A2", "A3"),
                fmt=FileFormat.TEXT,
            )
        assert count == 3
        async with database.reading() as session:
            rows = (
                await session.execute(select(Promocode.number, Promocode.state, Promocode.group_id))
            ).all()
        assert sorted(rows) == [("A1", 1, group.id), ("A2", 1, group.id), ("A3", 1, group.id)]

    async def test_appending_a_number_the_group_has_imports_nothing(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            await promocodes.import_codes(
                session,
                department.partner_id,
                name="Summer",
                stream=text_file("A1", "A2"),
                fmt=FileFormat.TEXT,
            )
        with pytest.raises(errors.DuplicateNumbers) as caught:
            async with database.transaction() as session:
                await promocodes.import_codes(
                    session,
                    department.partner_id,
                    name="Summer",
                    stream=text_file("B1", "A2", "B2"),
                    fmt=FileFormat.TEXT,
                )
        assert caught.value.extra["duplicates"] == ["A2"]
        assert await code_count(database) == 2

    async def test_the_same_number_may_live_in_two_groups(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            for name in ("Summer", "Winter"):
                await promocodes.import_codes(
                    session, department.partner_id, name=name, stream=text_file("SAME"), fmt=FileFormat.TEXT
                )
        assert await code_count(database) == 2

    async def test_a_failed_import_of_a_new_group_leaves_no_group(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        with pytest.raises(errors.DuplicateNumbers):
            async with database.transaction() as session:
                await promocodes.import_codes(
                    session,
                    department.partner_id,
                    name="Broken",
                    stream=text_file("X", "Y", "X"),
                    fmt=FileFormat.TEXT,
                )
        async with database.reading() as session:
            assert await session.scalar(select(func.count()).select_from(PromocodeGroup)) == 0
        assert await code_count(database) == 0

    async def test_a_late_invalid_line_rolls_back_the_chunks_already_written(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        numbers = [f"N{i:06d}" for i in range(120_000)] + ["x" * 129]
        with pytest.raises(errors.InvalidNumber) as caught:
            async with database.transaction() as session:
                await promocodes.import_codes(
                    session,
                    department.partner_id,
                    name="Big",
                    stream=text_file(*numbers),
                    fmt=FileFormat.TEXT,
                )
        assert caught.value.line == 120_001
        assert await code_count(database) == 0


class TestImportCertificates:
    async def test_numbers_are_unique_across_the_partners_groups(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            await certificates.import_certificates(
                session,
                department.partner_id,
                department_id=department.store_department_id,
                name="Gift 50",
                value=Decimal(50),
                stream=text_file("C1", "C2"),
                fmt=FileFormat.TEXT,
            )
        with pytest.raises(errors.DuplicateNumbers) as caught:
            async with database.transaction() as session:
                await certificates.import_certificates(
                    session,
                    department.partner_id,
                    department_id=department.store_department_id,
                    name="Gift 100",
                    value=Decimal(100),
                    stream=text_file("C3", "C2"),
                    fmt=FileFormat.TEXT,
                )
        assert caught.value.extra["duplicates"] == ["C2"]
        async with database.reading() as session:
            assert await session.scalar(select(func.count()).select_from(CertificateGroup)) == 1
            assert await session.scalar(select(func.count()).select_from(Certificate)) == 2

    async def test_another_partner_may_hold_the_same_number(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            other = await tenancy.create_department(session, "Other retailer")
        for owner in (department, other):
            async with database.transaction() as session:
                await certificates.import_certificates(
                    session,
                    owner.partner_id,
                    department_id=owner.store_department_id,
                    name="Gift",
                    value=Decimal(10),
                    stream=text_file("SHARED"),
                    fmt=FileFormat.TEXT,
                )
        async with database.reading() as session:
            assert await session.scalar(select(func.count()).select_from(Certificate)) == 2

    async def test_a_department_of_another_partner_is_refused(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            other = await tenancy.create_department(session, "Other retailer")
        with pytest.raises(errors.DepartmentNotFound):
            async with database.transaction() as session:
                await certificates.import_certificates(
                    session,
                    department.partner_id,
                    department_id=other.store_department_id,
                    name="Gift",
                    value=Decimal(10),
                    stream=text_file("C1"),
                    fmt=FileFormat.TEXT,
                )
