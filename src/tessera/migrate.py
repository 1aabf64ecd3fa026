"""Schema migrations, applied programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


_head: str | None = None


async def head_revision() -> str:
    """The latest migration's revision: the schema this code was written for (read once)."""
    global _head
    if _head is None:
        _head = await asyncio.to_thread(_read_head)
    return _head


def _read_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head
