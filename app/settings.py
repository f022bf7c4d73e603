"""Service configuration, read from ``PLACEMENT_*`` environment variables.

The variable names are a contract: the conformance harness and the benchmark
start the server with them.
"""

import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

INCOMPLETE_CONSUMER_ID = "00000000-0000-0000-0000-000000000000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLACEMENT_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./placement.sqlite"
    auth_strategy: Literal["noauth2", "keystone"] = "noauth2"
    policy_file: str | None = None
    enforce_new_defaults: bool = True
    cors_allowed_origins: Annotated[list[str], NoDecode] = []

    max_allocation_candidates: int = -1
    allocation_conflict_retry_count: int = 10
    randomize_allocation_candidates: bool = False
    sync_on_startup: bool = True

    incomplete_consumer_project_id: str = INCOMPLETE_CONSUMER_ID
    incomplete_consumer_user_id: str = INCOMPLETE_CONSUMER_ID

    # Attempts of one unit of work when PostgreSQL reports a serialization
    # failure (SQLSTATE 40001/40P01); each attempt runs in a fresh transaction.
    serialization_retry_count: int = 20
    db_pool_size: int = 10
    db_max_overflow: int = 20

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Accept the harness's comma list as well as a JSON list.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("policy_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
