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


async def current_revision(database_url: str) -> str | None:
    """The revision the database's schema is at, read by Alembic's MigrationContext; None when
    the database has no schema. A SQLite file that does not exist is not created to find out."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from tessera.db import async_url

    url = make_url(async_url(database_url))
    if url.get_backend_name() == "sqlite" and _no_such_file(url.database):
        return None
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync_connection: MigrationContext.configure(sync_connection).get_current_revision()
            )
    finally:
        await engine.dispose()


def _no_such_file(path: str | None) -> bool:
    return path not in (None, "", ":memory:") and not Path(str(path)).exists()


def pending_revisions(current: str | None) -> list[str] | None:
    """The revisions an upgrade from ``current`` to the head applies, oldest first; None when
    ``current`` is none of this code's migrations (a newer Tessera's schema)."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import ResolutionError

    script = ScriptDirectory.from_config(alembic_config(""))
    try:
        between = list(script.iterate_revisions("head", current or "base"))
    except ResolutionError:
        return None
    return [revision.revision for revision in reversed(between)]
