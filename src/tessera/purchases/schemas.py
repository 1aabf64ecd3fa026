"""How carts, codes and certificates look in SailPlay's purchase answers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tessera.purchases.pricing import CertificateCover, CodeVerdict, PricedCart, PromoAction


def money_out(amount: Decimal) -> int | float:
    """JSON numbers: ``1000`` for whole amounts, ``283.5`` otherwise."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _action(action: PromoAction, discount: Decimal | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": action.group_id,
        "alias": f"promocode-group-{action.group_id}",
        "name": action.name,
        "client_msg": action.name,
        "service_msg": f"promo code group {action.group_id}",
    }
    if discount is not None:
        entry["discount"] = money_out(discount)
    return entry


def cart_payload(
    priced: PricedCart, actions: dict[int, PromoAction], product_ids: dict[str, int]
) -> dict[str, Any]:
    positions = []
    for line in priced.positions:
        p = line.position
        positions.append(
            {
                "num": p.num,
                "sku": p.sku,
                "product": {"sku": p.sku, "id": product_ids.get(p.sku)},
                "price": money_out(p.price),
                "new_price": money_out(line.new_price),
                "min_price": money_out(p.min_price),
                "quantity": money_out(p.quantity),
                "discount": money_out(p.price - line.new_price),
                "marketing_actions": [_action(actions[g], cut) for g, cut in line.discounts.items()],
            }
        )
    return {
        "cart": {
            "positions": positions,
            "total_price": money_out(priced.total_price),
            "original_total_price": money_out(priced.original_total),
            "total_discount": money_out(priced.original_total - priced.total_price),
        },
        "marketing_actions_applied": [_action(actions[g]) for g in priced.applied],
        "possible_marketing_actions": [],
    }


def codes_payload(verdicts: Sequence[CodeVerdict], actions: dict[int, PromoAction]) -> list[dict[str, Any]]:
    payload = []
    for verdict in verdicts:
        group_id = verdict.candidate.group_id if verdict.candidate else None
        action = actions.get(group_id) if group_id is not None else None
        payload.append(
            {
                "number": verdict.number,
                "status": int(verdict.status),
                "status_description": verdict.description,
                "marketing_actions": (
                    [{"marketing_action_id": action.group_id, "marketing_action_name": action.name}]
                    if action
                    else []
                ),
            }
        )
    return payload


def certificates_payload(covers: Sequence[CertificateCover], *, used: bool) -> list[dict[str, Any]]:
    """``amount`` is what each certificate pays; ``used`` says whether this call used it up."""
    return [
        {"number": c.number, "amount": money_out(c.amount), "used": used and c.amount > 0} for c in covers
    ]
