"""Cart pricing with promo actions: pure rules, no database (SPEC §7).

Money is ``Decimal`` with two places. Actions are applied in a canonical order (by group id), so
the result does not depend on the order the codes came in; each position's discount stops at its
``min_price`` and never takes it below zero.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tessera import errors
from tessera.money import CENT, parse_amount
from tessera.promocodes import rules as promocode_rules

ZERO = Decimal("0.00")
MAX_POSITIONS = 1000


class DiscountType(enum.Enum):
    PERCENT = "percent"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Position:
    """One cart line. ``price`` is the line's total (all units), as SailPlay sends it."""

    num: int
    sku: str
    price: Decimal
    quantity: Decimal = Decimal(1)
    min_price: Decimal = ZERO

    @property
    def floor(self) -> Decimal:
        return max(self.min_price, ZERO)


@dataclass(frozen=True, slots=True)
class PromoAction:
    """A promo-code group's discount. ``skus`` None = the whole cart."""

    group_id: int
    name: str
    discount_type: DiscountType
    value: Decimal
    skus: frozenset[str] | None = None
    min_cart_total: Decimal | None = None

    def eligible(self, position: Position) -> bool:
        return self.skus is None or position.sku in self.skus


@dataclass(frozen=True, slots=True)
class PricedPosition:
    position: Position
    new_price: Decimal
    #: Discount each action gave this line, by group id.
    discounts: Mapping[int, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PricedCart:
    positions: tuple[PricedPosition, ...]
    total_price: Decimal
    original_total: Decimal
    #: Group ids of the actions that took something off, in the order applied.
    applied: tuple[int, ...]


def parse_cart(raw: Any) -> list[Position]:
    """SailPlay's cart: ``{"1": {"sku": "A1", "price": 1000, "quantity": 1, "min_price": 800}}``.

    Also accepts a JSON array of positions. Repeated SKUs are summed into one position (the
    first one's number), as SailPlay does.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise errors.InvalidParameter("cart", "not valid JSON") from None
    if isinstance(raw, list):
        items: Iterable[tuple[str, Any]] = ((str(i + 1), item) for i, item in enumerate(raw))
    elif isinstance(raw, dict):
        items = raw.items()
    else:
        raise errors.InvalidParameter("cart", "must be a JSON object keyed by position")
    by_sku: dict[str, Position] = {}
    for key, item in sorted(items, key=lambda kv: _position_number(kv[0])):
        if not isinstance(item, dict):
            raise errors.InvalidParameter("cart", f"position {key} is not an object")
        num = _position_number(key)
        sku = str(item.get("sku") or item.get("product_sku") or "").strip()
        if not sku:
            raise errors.InvalidParameter("cart", f"position {key} has no sku")
        if "price" not in item:
            raise errors.InvalidParameter("cart", f"position {key} has no price")
        price = parse_amount(item["price"], "cart", round_to_cents=True)
        try:
            raw_quantity = item.get("quantity")
            quantity = (
                Decimal(1) if raw_quantity is None or raw_quantity == "" else Decimal(str(raw_quantity))
            )
        except (InvalidOperation, ValueError):
            raise errors.InvalidParameter("cart", f"position {key} has a bad quantity") from None
        if not quantity.is_finite() or quantity <= 0:
            raise errors.InvalidParameter("cart", f"position {key} has a bad quantity")
        min_price = parse_amount(item.get("min_price", 0) or 0, "cart", round_to_cents=True)
        if sku in by_sku:
            first = by_sku[sku]
            by_sku[sku] = replace(
                first,
                price=first.price + price,
                quantity=first.quantity + quantity,
                min_price=first.min_price + min_price,
            )
        else:
            by_sku[sku] = Position(num=num, sku=sku, price=price, quantity=quantity, min_price=min_price)
    if not by_sku:
        raise errors.InvalidParameter("cart", "is empty")
    if len(by_sku) > MAX_POSITIONS:
        raise errors.InvalidParameter("cart", f"more than {MAX_POSITIONS} positions")
    return sorted(by_sku.values(), key=lambda p: p.num)


def _position_number(key: str) -> int:
    try:
        number = int(key)
    except ValueError:
        raise errors.InvalidParameter("cart", f"position key {key!r} is not a number") from None
    if not 0 <= number <= MAX_POSITION_NUMBER:
        raise errors.InvalidParameter("cart", f"position key {key!r} is out of range")
    return number


#: Position numbers are echoed back as JSON numbers: keep them well inside 64 bits.
MAX_POSITION_NUMBER = 2**31 - 1


def conditions_met(action: PromoAction, positions: Sequence[Position]) -> bool:
    """An action matches when the cart reaches its minimum total and holds an eligible line."""
    total = sum((p.price for p in positions), ZERO)
    if action.min_cart_total is not None and total < action.min_cart_total:
        return False
    return any(action.eligible(p) for p in positions)


def price_cart(positions: Sequence[Position], actions: Iterable[PromoAction]) -> PricedCart:
    prices = [p.price for p in positions]
    discounts: list[dict[int, Decimal]] = [{} for _ in positions]
    applied: list[int] = []
    for action in sorted(actions, key=lambda a: a.group_id):
        if not conditions_met(action, positions):
            continue
        cuts = _cuts(action, positions, prices)
        if not any(cuts):
            continue
        applied.append(action.group_id)
        for index, cut in enumerate(cuts):
            if cut:
                prices[index] -= cut
                discounts[index][action.group_id] = cut
    priced = tuple(
        PricedPosition(position=p, new_price=price, discounts=d)
        for p, price, d in zip(positions, prices, discounts, strict=True)
    )
    return PricedCart(
        positions=priced,
        total_price=sum(prices, ZERO),
        original_total=sum((p.price for p in positions), ZERO),
        applied=tuple(applied),
    )


def _cuts(action: PromoAction, positions: Sequence[Position], prices: Sequence[Decimal]) -> list[Decimal]:
    """How much the action takes off each line, within each line's headroom above its floor."""
    headroom = [
        max(price - p.floor, ZERO) if action.eligible(p) else ZERO
        for p, price in zip(positions, prices, strict=True)
    ]
    if action.discount_type is DiscountType.PERCENT:
        rate = min(action.value, Decimal(100)) / Decimal(100)
        return [
            min((price * rate).quantize(CENT, ROUND_HALF_UP), room) if room else ZERO
            for price, room in zip(prices, headroom, strict=True)
        ]
    return _spread(min(action.value, sum(headroom, ZERO)), headroom)


def _spread(amount: Decimal, headroom: Sequence[Decimal]) -> list[Decimal]:
    """Splits a fixed amount over lines in proportion to their headroom, to the cent, never past it."""
    total_room = sum(headroom, ZERO)
    if amount <= 0 or total_room <= 0:
        return [ZERO for _ in headroom]
    cuts = [(amount * room / total_room).quantize(CENT, ROUND_DOWN) for room in headroom]
    left = amount - sum(cuts, ZERO)
    for index, room in enumerate(headroom):
        if left <= 0:
            break
        extra = min(room - cuts[index], left)
        if extra > 0:
            cuts[index] += extra
            left -= extra
    return cuts


class CodeStatus(enum.IntEnum):
    """SailPlay's promo-code statuses in a cart (``promocodes_info=1``)."""

    ATTACHED = 1  # came with the cart
    RECOGNIZED = 2  # a code of this partner
    RULE_MATCHED = 3  # its group has a promo action
    MATCHED = 4  # and the action's conditions hold for this cart
    APPLIED = 5  # used by the purchase (purchases/new only)


@dataclass(frozen=True, slots=True)
class CodeCandidate:
    """What pricing needs to know of one code found for a number in the cart."""

    number: str
    code_id: int
    group_id: int
    group_enabled: bool
    single_use: bool
    state: int
    expires_at: Any
    action: PromoAction | None


@dataclass(frozen=True, slots=True)
class CodeVerdict:
    number: str
    status: CodeStatus
    description: str
    candidate: CodeCandidate | None = None


def judge_code(candidate: CodeCandidate, positions: Sequence[Position], now: Any) -> CodeVerdict:
    def verdict(status: CodeStatus, description: str) -> CodeVerdict:
        return CodeVerdict(candidate.number, status, description, candidate)

    if not candidate.group_enabled:
        return verdict(CodeStatus.RECOGNIZED, "Promocode group is disabled")
    if promocode_rules.is_expired(candidate.expires_at, now):
        return verdict(CodeStatus.RECOGNIZED, "Promocode expired")
    if promocode_rules.is_used_up(single_use=candidate.single_use, state=candidate.state):
        return verdict(CodeStatus.RECOGNIZED, "Promocode already used")
    if candidate.action is None:
        return verdict(CodeStatus.RECOGNIZED, "No promo action uses this promocode group")
    if not conditions_met(candidate.action, positions):
        return verdict(CodeStatus.RULE_MATCHED, "The cart does not meet the promo action's conditions")
    return verdict(CodeStatus.MATCHED, "Promo action matched")


def judge_codes(
    numbers: Sequence[str], candidates: Iterable[CodeCandidate], positions: Sequence[Position], now: Any
) -> list[CodeVerdict]:
    """One verdict per number, in the order given; at most one matched code per group.

    A number found in several groups is judged by its best group (highest status, then lowest id).
    """
    by_number: dict[str, list[CodeCandidate]] = {}
    for candidate in candidates:
        by_number.setdefault(candidate.number, []).append(candidate)
    verdicts = []
    matched_groups: set[int] = set()
    for number in numbers:
        found = by_number.get(number)
        if not found:
            verdicts.append(CodeVerdict(number, CodeStatus.ATTACHED, "Promocode not found"))
            continue
        judged = [judge_code(c, positions, now) for c in sorted(found, key=lambda c: c.group_id)]
        best = max(judged, key=lambda v: v.status)
        chosen = best.candidate
        if best.status == CodeStatus.MATCHED and chosen is not None:
            if chosen.group_id in matched_groups:
                best = CodeVerdict(
                    number, CodeStatus.RULE_MATCHED, "Another code of this group is already applied", chosen
                )
            else:
                matched_groups.add(chosen.group_id)
        verdicts.append(best)
    return verdicts


def drop_idle(
    verdicts: Sequence[CodeVerdict], actions: Mapping[int, PromoAction], positions: Sequence[Position]
) -> list[CodeVerdict]:
    """Matched codes whose action takes nothing off this cart (every line already at its floor)
    fall back to status 3, so a purchase does not use a code up for no discount."""
    matched = [v for v in verdicts if v.status == CodeStatus.MATCHED and v.candidate is not None]
    giving = set(
        price_cart(positions, [actions[v.candidate.group_id] for v in matched if v.candidate]).applied
    )
    return [
        CodeVerdict(
            v.number, CodeStatus.RULE_MATCHED, "The promo action gives no discount on this cart", v.candidate
        )
        if v.status == CodeStatus.MATCHED and v.candidate is not None and v.candidate.group_id not in giving
        else v
        for v in verdicts
    ]


def parse_numbers(raw: Any, field_name: str) -> list[str]:
    """``promocodes`` / ``certificates``: a JSON array string (a comma list is accepted too)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        try:
            raw = json.loads(text)
        except ValueError:
            raw = text.split(",")
    if isinstance(raw, str | int):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(n, str | int) for n in raw):
        raise errors.InvalidParameter(field_name, 'a JSON array of numbers, e.g. ["PROMO1"]')
    return list(dict.fromkeys(str(n).strip() for n in raw if str(n).strip()))


@dataclass(frozen=True, slots=True)
class CertificateCover:
    """What one certificate pays of a cart."""

    number: str
    certificate_id: int
    amount: Decimal


def cover_with_certificates(total: Decimal, values: Sequence[Decimal]) -> list[Decimal]:
    """How much each certificate pays, in the order given: each covers up to its value."""
    left = total
    amounts = []
    for value in values:
        amount = min(value, max(left, ZERO))
        amounts.append(amount)
        left -= amount
    return amounts
