"""A test client for the messaging face, shared by its end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from tessera.db import Database
from tessera.messaging.models import Event
from tessera.tenancy import service as tenancy


@dataclass
class EsputnikClient:
    """One partner's messaging-face client: every call carries its API key (HTTP Basic)."""

    http: httpx.AsyncClient
    partner_id: int
    key: str

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, auth=("tessera", self.key), **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", path, json=body, **kwargs)

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.call("PUT", path, json=body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("DELETE", path, **kwargs)

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """The call must answer 200; its JSON, or None for an empty body."""
        if body is not None:
            kwargs["json"] = body
        response = await self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json() if response.content else None


async def new_key(database: Database, partner_id: int) -> str:
    async with database.transaction() as session:
        return await tenancy.create_api_key(session, partner_id)


async def events_of(database: Database, partner_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    async with database.reading() as session:
        rows = await session.scalars(select(Event).where(Event.partner_id == partner_id).order_by(Event.id))
        return [(e.event_type_key, e.key_value, e.params) for e in rows]
