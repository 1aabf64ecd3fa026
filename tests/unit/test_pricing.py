"""Cart pricing rules (SPEC §7), pure: no database.

Carts as SailPlay sends them, percent and fixed promo actions (whole cart or listed SKUs, minimum
cart total, ``min_price`` floors), how codes are judged in a cart, how certificates cover a total,
and the properties every priced cart keeps whatever the actions and their order.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera import errors
from tessera.purchases.pricing import (
    CodeCandidate,
    CodeStatus,
    DiscountType,
    Position,
    PromoAction,
    cover_with_certificates,
    drop_idle,
    judge_codes,
    parse_cart,
    parse_numbers,
    price_cart,
)

D = Decimal
NOW = datetime(2026, 3, 1, 12, 0, 0)


def pos(num: int, sku: str, price: str, min_price: str = "0", quantity: str = "1") -> Position:
    return Position(num=num, sku=sku, price=D(price), quantity=D(quantity), min_price=D(min_price))


def percent(
    group_id: int, value: str, skus: set[str] | None = None, min_cart_total: str | None = None
) -> PromoAction:
    return PromoAction(
        group_id=group_id,
        name=f"{value}% off",
        discount_type=DiscountType.PERCENT,
        value=D(value),
        skus=frozenset(skus) if skus is not None else None,
        min_cart_total=D(min_cart_total) if min_cart_total is not None else None,
    )


def fixed(
    group_id: int, value: str, skus: set[str] | None = None, min_cart_total: str | None = None
) -> PromoAction:
    return PromoAction(
        group_id=group_id,
        name=f"{value} off",
        discount_type=DiscountType.FIXED,
        value=D(value),
        skus=frozenset(skus) if skus is not None else None,
        min_cart_total=D(min_cart_total) if min_cart_total is not None else None,
    )


def new_prices(positions: list[Position], *actions: PromoAction) -> list[Decimal]:
    return [line.new_price for line in price_cart(positions, actions).positions]


def invalid_cart(raw: Any) -> str:
    with pytest.raises(errors.InvalidParameter) as caught:
        parse_cart(raw)
    assert caught.value.status_code == -1000
    return str(caught.value.text)


# --- parse_cart ------------------------------------------------------------------------------------


class TestParseCart:
    def test_a_json_string_keyed_by_position(self) -> None:
        raw = json.dumps(
            {
                "1": {"sku": "A1", "price": 1000, "quantity": 2, "min_price": 800},
                "2": {"sku": "B2", "price": "250.5"},
            }
        )

        assert parse_cart(raw) == [
            Position(num=1, sku="A1", price=D("1000.00"), quantity=D(2), min_price=D("800.00")),
            Position(num=2, sku="B2", price=D("250.50"), quantity=D(1), min_price=D("0.00")),
        ]

    def test_an_already_parsed_object_and_a_json_array_are_accepted(self) -> None:
        expected = [pos(1, "A1", "10.00"), pos(2, "B2", "20.00")]

        assert parse_cart({"1": {"sku": "A1", "price": 10}, "2": {"sku": "B2", "price": 20}}) == expected
        assert parse_cart('[{"sku": "A1", "price": 10}, {"sku": "B2", "price": 20}]') == expected

    def test_positions_come_out_in_position_order_not_key_order(self) -> None:
        raw = '{"10": {"sku": "C", "price": 3}, "2": {"sku": "B", "price": 2}, "1": {"sku": "A", "price": 1}}'

        assert [(p.num, p.sku) for p in parse_cart(raw)] == [(1, "A"), (2, "B"), (10, "C")]

    def test_quantity_defaults_to_one(self) -> None:
        (position,) = parse_cart('{"1": {"sku": "A1", "price": 100}}')

        assert position.quantity == 1

    def test_price_is_the_position_total_not_a_unit_price(self) -> None:
        (position,) = parse_cart('{"1": {"sku": "A1", "price": 300, "quantity": 3}}')

        assert (position.price, position.quantity) == (D("300.00"), D(3))

    def test_repeated_skus_are_summed_into_the_first_position(self) -> None:
        raw = json.dumps(
            {
                "1": {"sku": "A1", "price": 100, "quantity": 1, "min_price": 50},
                "2": {"sku": "B2", "price": 40},
                "3": {"sku": "A1", "price": 250.25, "quantity": 2, "min_price": 10},
                "4": {"sku": "A1", "price": 1},
            }
        )

        assert parse_cart(raw) == [
            Position(num=1, sku="A1", price=D("351.25"), quantity=D(4), min_price=D("60.00")),
            Position(num=2, sku="B2", price=D("40.00"), quantity=D(1), min_price=D("0.00")),
        ]

    def test_amounts_are_rounded_to_the_cent(self) -> None:
        (position,) = parse_cart('{"1": {"sku": "A1", "price": 10.005, "min_price": "2.344"}}')

        assert (position.price, position.min_price) == (D("10.01"), D("2.34"))

    def test_the_sku_is_trimmed_and_product_sku_is_accepted(self) -> None:
        (position,) = parse_cart('{"1": {"product_sku": "  A1 ", "price": 5}}')

        assert position.sku == "A1"

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("{not json", "not valid JSON"),
            ('"a string"', "must be a JSON object keyed by position"),
            ("42", "must be a JSON object keyed by position"),
            ("{}", "is empty"),
            ("[]", "is empty"),
            ('{"1": "A1"}', "position 1 is not an object"),
            ('{"one": {"sku": "A1", "price": 1}}', "position key 'one' is not a number"),
            ('{"1": {"price": 1}}', "position 1 has no sku"),
            ('{"1": {"sku": "  ", "price": 1}}', "position 1 has no sku"),
            ('{"1": {"sku": "A1"}}', "position 1 has no price"),
            ('{"1": {"sku": "A1", "price": "ten"}}', "not a number"),
            ('{"1": {"sku": "A1", "price": -1}}', "must be a non-negative amount"),
            ('{"1": {"sku": "A1", "price": "Infinity"}}', "must be a non-negative amount"),
            ('{"1": {"sku": "A1", "price": "NaN"}}', "must be a non-negative amount"),
            ('{"1": {"sku": "A1", "price": 1e15}}', "must be a non-negative amount"),
            ('{"1": {"sku": "A1", "price": 1, "min_price": -5}}', "must be a non-negative amount"),
            ('{"1": {"sku": "A1", "price": 1, "quantity": -2}}', "position 1 has a bad quantity"),
            ('{"1": {"sku": "A1", "price": 1, "quantity": "Infinity"}}', "position 1 has a bad quantity"),
            ('{"1": {"sku": "A1", "price": 1, "quantity": "two"}}', "position 1 has a bad quantity"),
        ],
    )
    def test_a_malformed_cart_is_an_invalid_parameter(self, raw: str, reason: str) -> None:
        assert reason in invalid_cart(raw)

    def test_too_many_positions_are_refused(self) -> None:
        raw = {str(i): {"sku": f"S{i}", "price": 1} for i in range(1, 1002)}

        assert "more than 1000 positions" in invalid_cart(raw)


class TestMoneyAndNumbers:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (None, []),
            ("", []),
            ('["P1", "P2"]', ["P1", "P2"]),
            ('["P1", " P1 ", "", "P2"]', ["P1", "P2"]),
            ('[123, "A"]', ["123", "A"]),
            ("P1, P2", ["P1", "P2"]),
            ("P1", ["P1"]),
            ("123", ["123"]),
            (["P1"], ["P1"]),
        ],
    )
    def test_numbers_come_as_a_json_array_string(self, raw: Any, expected: list[str]) -> None:
        assert parse_numbers(raw, "promocodes") == expected

    @pytest.mark.parametrize("raw", ['{"P1": 1}', "[[1]]", "[null]", "[true, {}]"])
    def test_anything_else_is_refused(self, raw: str) -> None:
        with pytest.raises(errors.InvalidParameter):
            parse_numbers(raw, "certificates")


# --- price_cart --------------------------------------------------------------------------------------


class TestPercent:
    def test_takes_the_percent_off_every_position(self) -> None:
        positions = [pos(1, "A", "1000"), pos(2, "B", "250")]

        priced = price_cart(positions, [percent(7, "10")])

        assert [line.new_price for line in priced.positions] == [D("900.00"), D("225.00")]
        assert (priced.total_price, priced.original_total, priced.applied) == (
            D("1125.00"),
            D("1250.00"),
            (7,),
        )
        assert [dict(line.discounts) for line in priced.positions] == [{7: D("100.00")}, {7: D("25.00")}]

    def test_rounds_each_position_half_up_to_the_cent(self) -> None:
        assert new_prices([pos(1, "A", "0.05"), pos(2, "B", "9.99")], percent(1, "50")) == [
            D("0.02"),
            D("4.99"),
        ]

    def test_a_hundred_percent_makes_the_cart_free(self) -> None:
        priced = price_cart([pos(1, "A", "99.99")], [percent(1, "100")])

        assert priced.total_price == D("0.00")

    def test_never_takes_a_position_below_its_min_price(self) -> None:
        positions = [pos(1, "A", "1000", min_price="800"), pos(2, "B", "1000", min_price="0")]

        assert new_prices(positions, percent(1, "50")) == [D("800.00"), D("500.00")]

    def test_a_position_already_at_its_min_price_keeps_it(self) -> None:
        priced = price_cart([pos(1, "A", "100", min_price="100")], [percent(1, "30")])

        assert priced.total_price == D("100.00")
        assert priced.applied == (), "an action that took nothing off is not reported as applied"

    def test_limited_to_the_listed_skus(self) -> None:
        positions = [pos(1, "A", "100"), pos(2, "B", "100"), pos(3, "C", "100")]

        assert new_prices(positions, percent(1, "20", skus={"A", "C", "Z"})) == [
            D("80.00"),
            D("100.00"),
            D("80.00"),
        ]

    def test_skus_not_in_the_cart_match_nothing(self) -> None:
        priced = price_cart([pos(1, "A", "100")], [percent(1, "20", skus={"Z"})])

        assert (priced.total_price, priced.applied) == (D("100.00"), ())

    def test_two_percent_actions_compound_in_group_order(self) -> None:
        # 10% then 50%: 1000 → 900 → 450, whichever order they are given in.
        positions = [pos(1, "A", "1000")]

        for actions in ([percent(1, "10"), percent(2, "50")], [percent(2, "50"), percent(1, "10")]):
            priced = price_cart(positions, actions)
            assert (priced.total_price, priced.applied) == (D("450.00"), (1, 2))


class TestFixed:
    def test_takes_the_amount_off_the_cart(self) -> None:
        priced = price_cart([pos(1, "A", "1000")], [fixed(3, "150")])

        assert (priced.total_price, priced.applied) == (D("850.00"), (3,))

    def test_is_spread_over_positions_by_their_headroom_to_the_cent(self) -> None:
        positions = [pos(1, "A", "100"), pos(2, "B", "100"), pos(3, "C", "100")]

        priced = price_cart(positions, [fixed(1, "100")])

        cuts = [line.position.price - line.new_price for line in priced.positions]
        assert sum(cuts) == D("100.00")
        assert all(c == c.quantize(D("0.01")) for c in cuts)
        assert sorted(cuts) == [D("33.33"), D("33.33"), D("33.34")]
        assert priced.total_price == D("200.00")

    def test_spreads_in_proportion_to_headroom_above_min_price(self) -> None:
        # Headroom 300 and 100: 40 off splits 30 / 10.
        positions = [pos(1, "A", "400", min_price="100"), pos(2, "B", "200", min_price="100")]

        assert new_prices(positions, fixed(1, "40")) == [D("370.00"), D("190.00")]

    def test_stops_at_the_min_prices(self) -> None:
        positions = [pos(1, "A", "500", min_price="450"), pos(2, "B", "300", min_price="280")]

        priced = price_cart(positions, [fixed(1, "1000")])

        assert [line.new_price for line in priced.positions] == [D("450.00"), D("280.00")]
        assert priced.total_price == D("730.00")

    def test_never_makes_the_total_negative(self) -> None:
        priced = price_cart([pos(1, "A", "20"), pos(2, "B", "5.55")], [fixed(1, "1000")])

        assert [line.new_price for line in priced.positions] == [D("0.00"), D("0.00")]
        assert priced.total_price == D("0.00")

    def test_limited_to_the_listed_skus(self) -> None:
        positions = [pos(1, "A", "100"), pos(2, "B", "100")]

        assert new_prices(positions, fixed(1, "150", skus={"B"})) == [D("100.00"), D("0.00")]

    def test_a_cent_spread_over_three_positions(self) -> None:
        positions = [pos(1, "A", "1"), pos(2, "B", "1"), pos(3, "C", "1")]

        priced = price_cart(positions, [fixed(1, "0.01")])

        assert priced.total_price == D("2.99")
        assert sorted(line.new_price for line in priced.positions) == [D("0.99"), D("1.00"), D("1.00")]


class TestMinCartTotal:
    positions: ClassVar[list[Position]] = [pos(1, "A", "600"), pos(2, "B", "400")]

    def test_a_cart_below_the_minimum_gets_nothing(self) -> None:
        priced = price_cart(self.positions, [percent(1, "10", min_cart_total="1000.01")])

        assert (priced.total_price, priced.applied) == (D("1000.00"), ())

    def test_a_cart_at_the_minimum_gets_the_discount(self) -> None:
        priced = price_cart(self.positions, [fixed(1, "100", min_cart_total="1000")])

        assert (priced.total_price, priced.applied) == (D("900.00"), (1,))

    def test_the_minimum_is_the_original_total_not_what_earlier_actions_left(self) -> None:
        # 50% off brings the cart to 500; the fixed action still sees the original 1000.
        priced = price_cart(self.positions, [percent(1, "50"), fixed(2, "100", min_cart_total="1000")])

        assert (priced.total_price, priced.applied) == (D("400.00"), (1, 2))

    def test_the_minimum_counts_the_whole_cart_even_for_a_sku_limited_action(self) -> None:
        priced = price_cart(self.positions, [fixed(1, "50", skus={"B"}, min_cart_total="900")])

        assert [line.new_price for line in priced.positions] == [D("600.00"), D("350.00")]


class TestNoActions:
    def test_the_cart_keeps_its_prices(self) -> None:
        positions = [pos(1, "A", "10.50"), pos(2, "B", "0")]

        priced = price_cart(positions, [])

        assert [line.new_price for line in priced.positions] == [D("10.50"), D("0")]
        assert (priced.total_price, priced.original_total, priced.applied) == (D("10.50"), D("10.50"), ())


# --- judge_codes ---------------------------------------------------------------------------------------


def candidate(
    number: str,
    *,
    code_id: int = 1,
    group_id: int = 1,
    enabled: bool = True,
    single_use: bool = True,
    state: int = 1,
    expires_at: datetime | None = None,
    action: PromoAction | None = None,
    no_action: bool = False,
) -> CodeCandidate:
    return CodeCandidate(
        number=number,
        code_id=code_id,
        group_id=group_id,
        group_enabled=enabled,
        single_use=single_use,
        state=state,
        expires_at=expires_at,
        action=None if no_action else action or percent(group_id, "10"),
    )


CART = [pos(1, "A", "1000"), pos(2, "B", "500")]


def judged(numbers: list[str], *candidates: CodeCandidate) -> list[tuple[str, int, str]]:
    return [(v.number, int(v.status), v.description) for v in judge_codes(numbers, candidates, CART, NOW)]


class TestJudgeCodes:
    def test_an_unknown_number_is_only_attached(self) -> None:
        assert judged(["NOPE"]) == [("NOPE", 1, "Promocode not found")]

    @pytest.mark.parametrize(
        ("code", "description"),
        [
            (candidate("P1", enabled=False), "Promocode group is disabled"),
            (candidate("P1", expires_at=NOW), "Promocode expired"),
            (candidate("P1", expires_at=NOW - timedelta(days=1)), "Promocode expired"),
            (candidate("P1", single_use=True, state=3), "Promocode already used"),
            (candidate("P1", no_action=True), "No promo action uses this promocode group"),
        ],
    )
    def test_a_code_that_cannot_take_part_is_only_recognized(
        self, code: CodeCandidate, description: str
    ) -> None:
        assert judged(["P1"], code) == [("P1", 2, description)]

    @pytest.mark.parametrize(
        "action",
        [percent(1, "10", min_cart_total="1500.01"), fixed(1, "10", skus={"Z"})],
    )
    def test_an_action_whose_conditions_fail_is_rule_matched(self, action: PromoAction) -> None:
        assert judged(["P1"], candidate("P1", action=action)) == [
            ("P1", 3, "The cart does not meet the promo action's conditions")
        ]

    @pytest.mark.parametrize(
        "code",
        [
            candidate("P1"),
            candidate("P1", state=2),
            candidate("P1", single_use=False, state=3),
            candidate("P1", expires_at=NOW + timedelta(seconds=1)),
            candidate("P1", action=percent(1, "10", min_cart_total="1500")),
        ],
    )
    def test_a_usable_code_whose_action_holds_is_matched(self, code: CodeCandidate) -> None:
        (verdict,) = judge_codes(["P1"], [code], CART, NOW)

        assert (verdict.status, verdict.description) == (CodeStatus.MATCHED, "Promo action matched")
        assert verdict.candidate == code

    def test_one_code_per_group_the_second_is_rule_matched(self) -> None:
        first = candidate("P1", code_id=1, group_id=5)
        second = candidate("P2", code_id=2, group_id=5)
        other_group = candidate("Q1", code_id=3, group_id=6)

        assert judged(["P2", "P1", "Q1"], first, second, other_group) == [
            ("P2", 4, "Promo action matched"),
            ("P1", 3, "Another code of this group is already applied"),
            ("Q1", 4, "Promo action matched"),
        ]

    def test_verdicts_follow_the_order_the_numbers_came_in(self) -> None:
        codes = [candidate("B", code_id=1, group_id=1), candidate("A", code_id=2, group_id=2)]

        assert [n for n, _, _ in judged(["B", "X", "A"], *codes)] == ["B", "X", "A"]

    def test_a_number_in_several_groups_is_judged_by_its_best_group(self) -> None:
        disabled = candidate("SHARED", code_id=1, group_id=1, enabled=False)
        usable = candidate("SHARED", code_id=2, group_id=2)

        (verdict,) = judge_codes(["SHARED"], [disabled, usable], CART, NOW)

        assert verdict.status == CodeStatus.MATCHED
        assert verdict.candidate == usable

    def test_between_equally_good_groups_the_lowest_id_wins(self) -> None:
        codes = [candidate("SHARED", code_id=9, group_id=9), candidate("SHARED", code_id=3, group_id=3)]

        (verdict,) = judge_codes(["SHARED"], codes, CART, NOW)

        assert verdict.candidate is not None and verdict.candidate.group_id == 3

    def test_no_code_is_ever_applied_by_judging(self) -> None:
        verdicts = judge_codes(["P1"], [candidate("P1")], CART, NOW)

        assert CodeStatus.APPLIED not in {v.status for v in verdicts}


# --- cover_with_certificates -------------------------------------------------------------------------


class TestCoverWithCertificates:
    @pytest.mark.parametrize(
        ("total", "values", "expected"),
        [
            ("1000", [], []),
            ("1000", ["500"], ["500"]),
            ("300", ["500"], ["300"]),
            ("1000", ["500", "300"], ["500", "300"]),
            ("600", ["500", "300"], ["500", "100"]),
            ("600", ["300", "500"], ["300", "300"]),
            ("400", ["500", "300"], ["400", "0"]),
            ("0", ["500"], ["0"]),
            ("0.01", ["0.50", "1"], ["0.01", "0"]),
        ],
    )
    def test_each_covers_up_to_its_value_in_the_order_given(
        self, total: str, values: list[str], expected: list[str]
    ) -> None:
        amounts = cover_with_certificates(D(total), [D(v) for v in values])

        assert amounts == [D(e) for e in expected]

    def test_never_covers_more_than_the_total(self) -> None:
        amounts = cover_with_certificates(D("123.45"), [D("100"), D("100"), D("100")])

        assert sum(amounts) == D("123.45")
        assert all(a >= 0 for a in amounts)


# --- properties --------------------------------------------------------------------------------------

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: D(c).scaleb(-2))


@st.composite
def carts(draw: st.DrawFn) -> list[Position]:
    size = draw(st.integers(min_value=1, max_value=10))
    positions = []
    for index in range(size):
        price = draw(cents)
        min_price = draw(st.integers(min_value=0, max_value=int(price * 100)).map(lambda c: D(c).scaleb(-2)))
        quantity = D(draw(st.integers(min_value=1, max_value=5)))
        positions.append(
            Position(num=index + 1, sku=f"S{index}", price=price, quantity=quantity, min_price=min_price)
        )
    return positions


@st.composite
def actions(draw: st.DrawFn, positions: list[Position]) -> list[PromoAction]:
    count = draw(st.integers(min_value=0, max_value=4))
    group_ids = draw(
        st.lists(st.integers(min_value=1, max_value=1000), min_size=count, max_size=count, unique=True)
    )
    skus = [p.sku for p in positions] + ["ELSEWHERE"]
    made = []
    for group_id in group_ids:
        kind = draw(st.sampled_from(DiscountType))
        if kind is DiscountType.PERCENT:
            value = draw(st.integers(min_value=1, max_value=10_000).map(lambda c: D(c).scaleb(-2)))
        else:
            value = draw(st.integers(min_value=1, max_value=20_000_000).map(lambda c: D(c).scaleb(-2)))
        limited = draw(st.none() | st.sets(st.sampled_from(skus), min_size=1).map(frozenset))
        minimum = draw(st.none() | cents)
        made.append(PromoAction(group_id, f"group {group_id}", kind, value, limited, minimum))
    return made


@st.composite
def priced_inputs(draw: st.DrawFn) -> tuple[list[Position], list[PromoAction]]:
    positions = draw(carts())
    return positions, draw(actions(positions))


@settings(max_examples=300, deadline=None)
@given(priced_inputs())
def test_a_discounted_cart_stays_between_its_floors_and_its_original_total(
    inputs: tuple[list[Position], list[PromoAction]],
) -> None:
    positions, promo_actions = inputs

    priced = price_cart(positions, promo_actions)

    floors = sum((p.min_price for p in positions), D(0))
    original = sum((p.price for p in positions), D(0))
    assert priced.total_price >= floors
    assert priced.total_price >= 0
    assert priced.total_price <= original
    assert priced.original_total == original
    assert priced.total_price == sum((line.new_price for line in priced.positions), D(0))
    for line in priced.positions:
        assert line.position.min_price <= line.new_price <= line.position.price
        assert line.new_price == line.new_price.quantize(D("0.01"))
        assert sum(line.discounts.values(), D(0)) == line.position.price - line.new_price
    assert set(priced.applied) <= {a.group_id for a in promo_actions}


@settings(max_examples=150, deadline=None)
@given(priced_inputs())
def test_the_same_codes_in_any_order_give_the_same_total(
    inputs: tuple[list[Position], list[PromoAction]],
) -> None:
    positions, promo_actions = inputs

    first = price_cart(positions, promo_actions)

    for order in itertools.permutations(promo_actions):
        again = price_cart(positions, order)
        assert again.total_price == first.total_price
        assert [line.new_price for line in again.positions] == [line.new_price for line in first.positions]
        assert again.applied == first.applied


@settings(max_examples=200, deadline=None)
@given(
    total=cents,
    values=st.lists(
        st.integers(min_value=1, max_value=10_000_000).map(lambda c: D(c).scaleb(-2)), max_size=5
    ),
)
def test_certificates_never_cover_more_than_the_total_or_their_values(
    total: Decimal, values: list[Decimal]
) -> None:
    amounts = cover_with_certificates(total, values)

    assert len(amounts) == len(values)
    assert sum(amounts, D(0)) == min(total, sum(values, D(0)))
    assert all(D(0) <= amount <= value for amount, value in zip(amounts, values, strict=True))


class TestDropIdle:
    def test_a_matched_code_whose_action_takes_nothing_off_is_not_applied(self) -> None:
        cart = [pos(1, "A", "1000", min_price="1000")]
        action = percent(1, "10")
        verdicts = judge_codes(["P1"], [candidate("P1", action=action)], cart, NOW)
        assert verdicts[0].status == CodeStatus.MATCHED
        settled = drop_idle(verdicts, {1: action}, cart)
        assert settled[0].status == CodeStatus.RULE_MATCHED
        assert settled[0].description == "The promo action gives no discount on this cart"

    def test_a_code_that_takes_something_off_stays_matched(self) -> None:
        cart = [pos(1, "A", "1000", min_price="950")]
        action = percent(1, "10")
        verdicts = judge_codes(["P1"], [candidate("P1", action=action)], cart, NOW)
        assert drop_idle(verdicts, {1: action}, cart)[0].status == CodeStatus.MATCHED


class TestQuantity:
    @pytest.mark.parametrize("quantity", [0, "0", -1, "two"])
    def test_a_quantity_that_is_not_positive_is_refused(self, quantity: Any) -> None:
        with pytest.raises(errors.InvalidParameter) as caught:
            parse_cart({"1": {"sku": "A", "price": 100, "quantity": quantity}})
        assert caught.value.text == "Invalid value of cart: position 1 has a bad quantity"
