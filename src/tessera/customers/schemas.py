"""How customers look on the wire (SailPlay's user object)."""

from __future__ import annotations

from typing import Any

from tessera.customers.models import Customer, CustomerRow


def sailplay_user(customer: Customer | CustomerRow) -> dict[str, Any]:
    return {
        "id": customer.id,
        "phone": customer.phone,
        "email": customer.email,
        "origin_user_id": customer.origin_user_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "middle_name": customer.middle_name,
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else None,
        "sex": customer.sex,
    }
