from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable, from ``TESSERA_*`` environment variables or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./tessera.db"
    smtp_url: str | None = None
    sms_url: str | None = None
    secret_key: str = "change-me"
    token_ttl_seconds: int = 86400
    #: A validated token is remembered in-process this long, so hot paths skip one query.
    token_cache_seconds: float = 30.0
    #: Requests per second per partner on the loyalty face; 0 disables the limit.
    rate_limit_per_second: int = 0
