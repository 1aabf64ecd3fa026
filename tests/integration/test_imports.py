"""The bulk import against real databases: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tessera import errors
from tessera.certificates import service as certificates
from tessera.certificates.models import Certificate, CertificateGroup
from tessera.clock import utcnow
from tessera.db import Database
from tessera.imports.parsers import FileFormat
from tessera.promocodes import repository as promocode_repository
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


class TestPlannerStatistics:
    """An import refreshes the planner's statistics before it answers, so the first issue after
    an upload walks the free-code index instead of sorting every free code of the group."""

    async def test_the_claim_uses_the_free_code_index_right_after_an_import(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        async with database.transaction() as session:
            await promocodes.import_codes(
                session, department.partner_id, name="Tiny", stream=text_file("T-1"), fmt=FileFormat.TEXT
            )
        async with database.transaction() as session:
            group, _ = await promocodes.import_codes(
                session,
                department.partner_id,
                name="Campaign",
                stream=text_file(*(f"C-{n:06d}" for n in range(30_000))),
                fmt=FileFormat.TEXT,
            )
        async with database.read() as conn:
            rows = await conn.fetchall(
                promocode_repository.CLAIM.explained(),
                group_id=group.id,
                partner_id=department.partner_id,
                customer_id=None,
                now=utcnow(),
            )
        plan = "\n".join(str(row[-1]) for row in rows)
        # Without statistics PostgreSQL plans for the table as it was before the import (one code):
        # it fetches every free code of the new group and sorts them, on every issue. With them,
        # the first free code comes straight from an index in id order: the free-code index, or
        # (group_id, state) whose entries SQLite keeps in rowid order.
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
        indexes = ("ix_promocodes_available", "ix_promocodes_group_id_state")
        assert any(index in plan.split("SUBQUERY")[-1] for index in indexes), plan
        # And the statistics are the import's own: they know the new group holds the table's codes.
        async with database.reading() as session:
            if database.is_sqlite:
                stat = await session.scalar(
                    text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_promocodes_group_id_state'")
                )
                assert stat is not None and int(stat.split()[0]) >= 30_000, stat
            else:
                row = (
                    await session.execute(
                        text(
                            "SELECT most_common_vals::text, most_common_freqs FROM pg_stats"
                            " WHERE tablename = 'promocodes' AND attname = 'group_id'"
                        )
                    )
                ).one()
                assert row[0] == f"{{{group.id}}}" and row[1][0] > 0.9, row

    async def test_the_claim_stays_on_the_free_code_index_once_most_codes_are_issued(
        self, database: Database, department: tenancy.NewDepartment
    ) -> None:
        """Issued codes are the lowest ids of their group. A claim that walked the primary key in
        id order, as PostgreSQL chose while one group held the table, read past every one of
        them on each issue; the free-code index reads only free codes."""
        async with database.transaction() as session:
            group, _ = await promocodes.import_codes(
                session,
                department.partner_id,
                name="Campaign",
                stream=text_file(*(f"C-{n:06d}" for n in range(30_000))),
                fmt=FileFormat.TEXT,
            )
        # Two thirds issued since the import's statistics, which still say every code is free.
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE promocodes SET state = 2, receipt_date = :now WHERE id <= :last"),
                {"now": utcnow(), "last": 20_000},
            )
        async with database.read() as conn:
            rows = await conn.fetchall(
                promocode_repository.CLAIM.explained(),
                group_id=group.id,
                partner_id=department.partner_id,
                customer_id=None,
                now=utcnow(),
            )
        plan = "\n".join(str(row[-1]) for row in rows)

        # The subquery that picks the code (SQLite prints it after SUBQUERY; PostgreSQL reads its
        # table as promocodes_1), not the UPDATE that then finds that one row by its key.
        picks = plan.split("SUBQUERY")[-1] if database.is_sqlite else plan.split("InitPlan")[-1]
        picks = picks.split("Index Scan using pk_promocodes on promocodes  ")[0]
        assert "TEMP B-TREE" not in picks and "Sort" not in picks, plan
        assert "ix_promocodes_available" in picks or "ix_promocodes_group_id_state" in picks, plan
        assert "PRIMARY KEY" not in picks and "pk_promocodes" not in picks, plan
