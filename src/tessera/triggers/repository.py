"""The statements that store events and start workflow runs, on the driver (``tessera.sql``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tessera.sql import Conn, Statement

_RUN_COLUMNS = (
    "partner_id, workflow_id, customer_id, event_id, data, step_index, status, attempts, available_at,"
    " created_at"
)
_ADD_EVENT_SQL = (
    "INSERT INTO events (partner_id, event_type_key, key_value, params, received_at)"
    " VALUES (:partner_id, :key, :key_value, :params, :now) RETURNING id"
)


def _start_runs_sql(trigger: str, source: str, customer: str, event_id: str, data: str, dialect: str) -> str:
    """Starts every enabled workflow of the partner whose ``trigger`` (a condition on ``w``)
    holds, in id order, due at ``:now``: one run for each row of ``source`` (``workflows w``,
    joined to whatever the runs are for), with this ``customer``, ``event_id`` and ``data``."""
    now = "CAST(:now AS TIMESTAMP)" if dialect == "postgresql" else ":now"
    return (
        f"INSERT INTO workflow_runs ({_RUN_COLUMNS})"
        f" SELECT w.partner_id, w.id, {customer}, {event_id}, {data}, 0, 'active', 0, {now}, {now}"
        f" FROM {source}"
        f" WHERE w.partner_id = :partner_id AND w.enabled AND w.deleted_at IS NULL AND {trigger}"
        " ORDER BY w.id"
    )


def _start_event_runs_sql(event_id: str, dialect: str) -> str:
    """Starts every enabled workflow that event key ``:key`` triggers for the event ``event_id``
    names (SQL: a parameter, or a column of the statement's own insert), with the event's
    ``:params`` as each run's data and ``:customer_id`` as its contact."""
    if dialect == "postgresql":
        customer, data = "CAST(:customer_id AS BIGINT)", "CAST(:params AS JSONB)"
    else:
        customer, data = ":customer_id", ":params"
    return _start_runs_sql("w.trigger_event = :key", "workflows w", customer, event_id, data, dialect)


# Events arrive by the thousand a second: on PostgreSQL the event and the runs it starts are one
# statement (in autocommit, ``Database.write_one``); SQLite, without data-modifying CTEs, takes two.
_ADD_EVENT = Statement(_ADD_EVENT_SQL)
_START_EVENT_RUNS = Statement(_start_event_runs_sql(":event_id", "sqlite"))
_ADD_EVENT_AND_START_RUNS = Statement(
    f"WITH event AS ({_ADD_EVENT_SQL}) {_start_event_runs_sql('(SELECT id FROM event)', 'postgresql')}"
)


def start_tag_runs_sql(customers: str, dialect: str) -> str:
    """Starts every enabled workflow that tag ``:tag`` triggers, once for each ``customer_id`` of
    ``customers`` (a FROM item: the customers who have just got the tag), due at ``:now``.

    A FROM item rather than one id, so that a statement that gives the tag can start the runs in
    the same statement (see ``promocodes.repository``'s activation).
    """
    data = "jsonb_build_object" if dialect == "postgresql" else "json_object"
    source = f"{customers} AS c CROSS JOIN workflows w"
    return _start_runs_sql(
        "w.trigger_tag = :tag", source, "c.customer_id", "NULL", f"{data}('tag', w.trigger_tag)", dialect
    )


_START_TAG_RUNS = Statement(
    start_tag_runs_sql("(SELECT :customer_id AS customer_id)", "sqlite"),
    postgresql=start_tag_runs_sql("(SELECT CAST(:customer_id AS BIGINT) AS customer_id)", "postgresql"),
)


async def record_event(
    conn: Conn,
    partner_id: int,
    key: str,
    key_value: str,
    params: dict[str, Any],
    customer_id: int | None,
    now: datetime,
) -> None:
    """Stores an event and starts the workflows it triggers, which commit together."""
    values = {"partner_id": partner_id, "key": key, "key_value": key_value, "params": params, "now": now}
    if not conn.is_sqlite:
        await conn.execute(_ADD_EVENT_AND_START_RUNS, customer_id=customer_id, **values)
        return
    event_id = await conn.fetchval(_ADD_EVENT, **values)
    await conn.execute(_START_EVENT_RUNS, event_id=event_id, customer_id=customer_id, **values)


async def start_tag_runs(conn: Conn, partner_id: int, customer_id: int, tag: str, now: datetime) -> None:
    """Starts the workflows this tag triggers for a customer who has just got it."""
    await conn.execute(_START_TAG_RUNS, partner_id=partner_id, customer_id=customer_id, tag=tag, now=now)
