from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.db import Database


class Settings(BaseSettings):
    """Everything configurable, from ``TESSERA_*`` environment variables or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./tessera.db"
    #: PostgreSQL connections each process keeps open, and how many more it may open at a peak.
    #: Keep processes × (2 × size + overflow) under the server's max_connections: each process has
    #: an asyncpg pool of `size` for the hot paths and an SQLAlchemy pool of size + overflow.
    database_pool_size: int = Field(20, ge=1)
    database_pool_overflow: int = Field(10, ge=0)
    smtp_url: str | None = None
    sms_url: str | None = None
    secret_key: str = "change-me"
    token_ttl_seconds: int = 86400
    #: A validated token is remembered in-process this long, so hot paths skip one query.
    token_cache_seconds: float = 30.0
    #: Loyalty-face requests per second per partner and process; over it: HTTP 429. 0 = no limit.
    #: (SailPlay allows 50.)
    rate_limit_per_second: int = 0
    #: Failed code and certificate look-ups per partner, client address and minute, all
    #: processes together; past it the client's look-ups answer HTTP 429 until the minute ends.
    #: 0 = no limit.
    lookup_misses_per_minute: int = Field(100, ge=0)
    #: Log lines as text or as JSON objects (``json``): one per request, delivery attempt and step.
    log_format: Literal["text", "json"] = "text"
    #: The line per request (off leaves the delivery and step lines, and every metric).
    log_requests: bool = True
    #: Sender address/name for SMS when a message has none (the gateway's alpha-name).
    sms_from: str = "Tessera"
    #: Delivery worker: a claim is leased this long; a crashed worker's claims return after it.
    delivery_lease_seconds: float = 120.0
    #: A delivery that failed for good gives its promo codes back this long after the failure;
    #: by default the lease plus the send timeout, when no worker whose lease lapsed can still be
    #: sending it.
    delivery_code_return_seconds: float | None = None
    #: After this many failed attempts a delivery is `failed` with the last reason.
    delivery_max_attempts: int = 8
    #: Backoff between attempts doubles from 1 s up to this cap.
    delivery_backoff_cap_seconds: float = 300.0
    worker_poll_seconds: float = 0.5
    worker_batch_size: int = 200
    #: Run the delivery worker inside `tessera serve` (turn off when running `tessera worker`s).
    serve_runs_worker: bool = True

    def database(self) -> Database:
        return Database(
            self.database_url, pool_size=self.database_pool_size, max_overflow=self.database_pool_overflow
        )
