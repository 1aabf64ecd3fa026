"""How promo codes and groups look on the wire (SailPlay objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tessera.clock import isoformat
from tessera.promocodes.models import CodeRow, CodeState, GroupRow, Promocode, PromocodeGroup
from tessera.promocodes.rules import GroupCounts, can_be_applied


def group_object(group: PromocodeGroup, counts: GroupCounts) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "group_type": group.group_type,
        "apply_items_once": group.apply_items_once,
        "enabled": group.enabled,
        "create_date": isoformat(group.created_at),
        "update_date": isoformat(group.updated_at),
        "total_count": counts.total,
        "unused_count": counts.unused,
        "reserved_count": counts.reserved,
        "receipted_count": counts.receipted,
        "applied_count": counts.applied,
        "marketing_actions": marketing_actions(group),
        "low_stock_warning": group.low_stock_warning,
        "low_stock_alarm": group.low_stock_alarm,
    }


def marketing_actions(group: PromocodeGroup | GroupRow) -> list[dict[str, Any]]:
    """The group's promo action in SailPlay's marketing-action shape (empty when it has none)."""
    if group.discount_type is None or group.discount_value is None:
        return []
    amount = f"{group.discount_value.normalize():f}"
    what = f"{amount}%" if group.discount_type == "percent" else amount
    where = f" on {', '.join(group.discount_skus)}" if group.discount_skus else ""
    return [
        {
            "id": group.id,
            "alias": f"promocode-group-{group.id}",
            "name": f"{group.name}: {what} off{where}",
            "status": "active" if group.enabled else "inactive",
            "discount_type": group.discount_type,
            "discount_value": float(group.discount_value),
            "skus": group.discount_skus,
            "min_cart_total": float(group.min_cart_total) if group.min_cart_total is not None else None,
            "client_msg": f"{what} off{where}",
            "service_msg": f"promo code group {group.name}",
        }
    ]


def promocode_object(
    code: Promocode | CodeRow,
    group: PromocodeGroup | GroupRow,
    now: datetime,
    customer_id: int | None = None,
) -> dict[str, Any]:
    """One shape for info/search/issue/list-for-user: the union of the seed's and the SDK's fields."""
    issued_to = customer_id if customer_id is not None else code.customer_id
    return {
        "number": code.number,
        "group": {
            "id": group.id,
            "name": group.name,
            "type": group.group_type,
            "apply_items_once": group.apply_items_once,
            "enabled": group.enabled,
        },
        "promocode_status": code.state,
        "is_published": code.state >= CodeState.ISSUED,
        "issued_to": {"id": issued_to} if issued_to is not None else None,
        "receipt_date": isoformat(code.receipt_date),
        "activated": code.activated_at is not None,
        "applied_times": code.applied_times,
        "date_of_use": isoformat(code.date_of_use),
        "expiration_date": isoformat(code.expires_at),
        "can_be_applied": can_be_applied(
            group_enabled=group.enabled,
            single_use=group.apply_items_once,
            state=code.state,
            expires_at=code.expires_at,
            now=now,
        ),
    }
