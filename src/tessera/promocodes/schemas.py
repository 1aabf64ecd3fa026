"""How promo codes and groups look on the wire (SailPlay objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tessera.clock import isoformat
from tessera.promocodes.models import CodeState, Promocode, PromocodeGroup
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
    }


def promocode_object(
    code: Promocode, group: PromocodeGroup, now: datetime, customer_id: int | None = None
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
            apply_items_once=group.apply_items_once,
            state=code.state,
            expires_at=code.expires_at,
            now=now,
        ),
    }
