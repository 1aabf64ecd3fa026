"""The promo-code and purchase rules proven where they live: the services and the repository's
guarded statements, called without HTTP (SPEC §5, §7). The API tests show the same rules through
the faces; these fail at the rule's own home when it breaks."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tessera import errors
from tessera.clock import utcnow
from tessera.customers import service as customers
from tessera.db import Database
from tessera.imports.parsers import FileFormat
from tessera.promocodes import repository, rules
from tessera.promocodes import service as promocodes
from tessera.promocodes.models import CodeState, GroupType
from tessera.purchases import service as purchases
from tessera.purchases.pricing import CodeStatus, Position
from tessera.tenancy import service as tenancy


@pytest.fixture
async def shop(database: Database) -> tenancy.NewDepartment:
    async with database.transaction() as session:
        return await tenancy.create_department(session, "Rules shop")


async def upload(
    database: Database,
    partner_id: int,
    name: str,
    *numbers: str,
    single_use: bool = True,
    expired: bool = False,
) -> int:
    async with database.transaction() as session:
        group, _ = await promocodes.import_codes(
            session,
            partner_id,
            name=name,
            stream=io.BytesIO("".join(f"{n}\n" for n in numbers).encode()),
            fmt=FileFormat.TEXT,
            group_type=GroupType.SIMPLE,
            apply_items_once=single_use,
            expires_at=utcnow() - timedelta(days=1) if expired else None,
        )
        return group.id


async def customer(database: Database, partner_id: int, email: str) -> int:
    async with database.write() as conn:
        return (await customers.add_or_update(conn, partner_id, customers.CustomerInput(email=email))).id


async def code(database: Database, partner_id: int, number: str) -> tuple[int, int, int]:
    """(id, state, applied_times) of the partner's code with this number."""
    async with database.read() as conn:
        [(row, _)] = await promocodes.find(conn, partner_id, number)
    return row.id, row.state, row.applied_times


class TestIssue:
    async def test_each_code_goes_to_one_customer_then_the_group_is_exhausted(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        await upload(database, shop.partner_id, "Summer", "S-1", "S-2")
        anna = await customer(database, shop.partner_id, "anna@example.com")
        boris = await customer(database, shop.partner_id, "boris@example.com")
        async with database.write() as conn:
            first, _ = await promocodes.issue_to_customer(conn, shop.partner_id, anna, "Summer")
            second, _ = await promocodes.issue_to_customer(conn, shop.partner_id, boris, "Summer")
        assert {(first.number, first.customer_id), (second.number, second.customer_id)} == {
            ("S-1", anna),
            ("S-2", boris),
        }
        assert {first.state, second.state} == {CodeState.ISSUED}
        with pytest.raises(errors.NoFreePromocodes):
            async with database.write() as conn:
                await promocodes.issue_to_customer(conn, shop.partner_id, anna, "Summer")

    async def test_an_expired_code_is_never_issued(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        await upload(database, shop.partner_id, "Old", "O-1", expired=True)
        anna = await customer(database, shop.partner_id, "anna@example.com")
        with pytest.raises(errors.NoFreePromocodes):
            async with database.write() as conn:
                await promocodes.issue_to_customer(conn, shop.partner_id, anna, "Old")
        assert await code(database, shop.partner_id, "O-1") == (
            (await code(database, shop.partner_id, "O-1"))[0],
            CodeState.AVAILABLE,
            0,
        )


class TestApplyAndGiveBack:
    async def test_a_single_use_code_is_applied_once(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        await upload(database, shop.partner_id, "Once", "ONE-1")
        code_id, _, _ = await code(database, shop.partner_id, "ONE-1")
        async with database.write() as conn:
            assert await repository.apply_code(conn, code_id, single_use=True, now=utcnow())
            assert not await repository.apply_code(conn, code_id, single_use=True, now=utcnow())
        assert await code(database, shop.partner_id, "ONE-1") == (code_id, CodeState.APPLIED, 1)
        assert rules.is_used_up(single_use=True, state=CodeState.APPLIED)

    async def test_a_multi_use_code_is_applied_again_and_again(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        await upload(database, shop.partner_id, "Many", "MANY-1", single_use=False)
        code_id, _, _ = await code(database, shop.partner_id, "MANY-1")
        async with database.write() as conn:
            for _ in range(3):
                assert await repository.apply_code(conn, code_id, single_use=False, now=utcnow())
        assert await code(database, shop.partner_id, "MANY-1") == (code_id, CodeState.APPLIED, 3)

    async def test_giving_back_returns_a_code_to_issued_only_when_its_last_use_goes(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        await upload(database, shop.partner_id, "Many", "MANY-1", single_use=False)
        code_id, _, _ = await code(database, shop.partner_id, "MANY-1")
        async with database.write() as conn:
            for _ in range(2):
                await repository.apply_code(conn, code_id, single_use=False, now=utcnow())
        async with database.transaction() as session:
            await repository.give_back(session, code_id)
        assert await code(database, shop.partner_id, "MANY-1") == (code_id, CodeState.APPLIED, 1)
        for _ in range(2):  # a second give-back of the last use, and one too many: never below
            async with database.transaction() as session:
                await repository.give_back(session, code_id)
            assert await code(database, shop.partner_id, "MANY-1") == (code_id, CodeState.ISSUED, 0)


class TestPurchases:
    async def test_a_single_use_code_buys_once_and_again_after_its_purchase_is_deleted(
        self, database: Database, shop: tenancy.NewDepartment
    ) -> None:
        group_id = await upload(database, shop.partner_id, "Tenner", "TEN-1")
        async with database.transaction() as session:
            await promocodes.edit_group(
                session,
                shop.partner_id,
                group_id,
                enabled=None,
                name=None,
                discount=rules.DiscountSettings("fixed", Decimal(10), None, None),
            )
        cart = purchases.CartRequest(
            positions=[Position(num=1, sku="A-1", price=Decimal(100))],
            promocodes=["TEN-1"],
            certificates=[],
            promocodes_info=True,
        )

        async def buy(order_num: str) -> dict[str, Any]:
            async with database.write() as conn:
                return await purchases.create(
                    conn, shop.partner_id, shop.store_department_id, cart, customer=None, order_num=order_num
                )

        def verdicts(answer: dict[str, Any]) -> list[tuple[int, str]]:
            return [(c["status"], c["status_description"]) for c in answer["promocodes"]]

        assert verdicts(await buy("order-1")) == [(CodeStatus.APPLIED, "Applied")]
        assert verdicts(await buy("order-2")) == [(CodeStatus.RECOGNIZED, "Promocode already used")]

        async with database.transaction() as session:
            purchase = await purchases.find(
                session, shop.partner_id, shop.store_department_id, None, "order-1"
            )
            await purchases.delete(session, shop.partner_id, shop.store_department_id, purchase.id, None)
        assert (await code(database, shop.partner_id, "TEN-1"))[1:] == (CodeState.ISSUED, 0)

        assert verdicts(await buy("order-3")) == [(CodeStatus.APPLIED, "Applied")]
        assert (await code(database, shop.partner_id, "TEN-1"))[1:] == (CodeState.APPLIED, 1)
