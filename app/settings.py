"""Service configuration.

Sources, strongest first: keyword arguments (tests), ``PLACEMENT_*``
environment variables, then the operator's ``placement.conf``
(``app/config/placement_conf.py``: the reference's sections and option names,
found as the reference finds it), then the defaults below.

The variable names are a contract: the conformance harness and the benchmark
start the server with them (``app/config/environment.py``). Nested settings
take ``__``: ``PLACEMENT_KEYSTONE__AUTH_URL``.
"""

import json
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from app.config import environment, placement_conf

INCOMPLETE_CONSUMER_ID = "00000000-0000-0000-0000-000000000000"


LOOPBACK = ["127.0.0.1", "::1"]


class KeystoneSettings(BaseModel):
    """``[keystone_authtoken]``: keystonemiddleware's option names and defaults."""

    www_authenticate_uri: str | None = None
    auth_url: str | None = None
    auth_type: Literal["password", "v3password"] = "password"
    username: str | None = None
    password: SecretStr = SecretStr("")
    project_name: str | None = None
    user_domain_name: str = "Default"
    user_domain_id: str | None = None
    project_domain_name: str = "Default"
    project_domain_id: str | None = None
    system_scope: str | None = None
    interface: str = "internal"
    region_name: str | None = None
    token_cache_time: int = 300
    http_connect_timeout: float | None = None
    http_request_max_retries: int = 3
    service_token_roles: list[str] = ["service"]
    service_token_roles_required: bool = True
    memcached_servers: list[str] = []
    # Not in keystonemiddleware: bounds of the in-process cache and of one
    # request's wait for Keystone (then 503; keystonemiddleware can hang).
    token_cache_size: int = 10_000
    validation_timeout: float = 6.0

    @field_validator("service_token_roles", "memcached_servers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)


def _comma_list(value: object) -> object:
    """A comma list (or a JSON list) from a variable or a file."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        """The settings from ``values``, the environment and placement.conf."""
        from_file = placement_conf.read(placement_conf.config_files())
        below = environment.merged(from_file, environment.values(type(self)))
        super().__init__(**environment.merged(below, values))

    database_url: str = "sqlite+aiosqlite:///./placement.sqlite"
    auth_strategy: Literal["noauth2", "keystone"] = "noauth2"
    policy_file: str | None = None
    enforce_new_defaults: bool = True
    cors_allowed_origins: list[str] = []

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

    enforce_scope: bool = True
    # The placement.conf files read (set by the loader, for ``config show``).
    config_files: list[str] = []
    keystone: KeystoneSettings = KeystoneSettings()

    # Secure defaults (README, "Secure defaults"). noauth2 trusts whatever token
    # a client sends, so it listens on loopback only unless this is set.
    allow_remote_noauth2: bool = False
    # Proxies whose X-Forwarded-For/-Proto are believed ('*': any).
    trusted_proxies: list[str] = LOOPBACK
    # /metrics, /docs and /openapi* without a token. Unset: yes under noauth2
    # (loopback only anyway), no under keystone (metrics reveal traffic and
    # consumers' activity; the documents the exact deployed version).
    public_docs_and_metrics: bool | None = None
    # Bounds on waiting for the database (seconds; app/db/timeouts.py): one
    # statement per kind of unit of work, one lock, a pooled connection
    # (placement.conf [placement_database] pool_timeout), opening a connection.
    db_statement_timeout_read: float = 30.0
    db_statement_timeout_write: float = 30.0
    db_statement_timeout_candidates: float = 60.0
    db_lock_timeout: float = 10.0
    db_pool_timeout: float = 10.0
    db_connect_timeout: float = 5.0
    # Seconds a unit of work whose connection was lost before COMMIT keeps being
    # run again on fresh connections (a database restarting) before its 503.
    db_reconnect_window: float = 4.0
    # A read standby (PostgreSQL streaming replica, another Galera node) for the
    # reads that tolerate replication lag (README, "Topology"); unset: the primary.
    database_read_url: str | None = None
    # Seconds of replay lag past which those reads go to the primary (PostgreSQL
    # standbys only; unset: no bound), and how long an unreachable standby is
    # left alone before it is tried again.
    database_read_max_lag: float | None = None
    database_read_retry_interval: float = 30.0

    # Bounds on one request (README "Limits"; issue 12). A URL (path and
    # query) longer than max_url_length answers 414; uvicorn refuses a request
    # head over its --h11-max-incomplete-event-size (16 KiB by default, raised
    # by placement-api) with a plain 400 first, so keep this limit below it.
    max_url_length: int = 8192
    # Bodies longer than this answer 413 (Content-Length, or counted as read).
    max_body_bytes: int = 4 * 1024 * 1024
    # Query bounds (app.query.QueryLimits): occurrences of one key, request
    # groups, items of one ``in:`` list, distinct trait conditions per group.
    max_param_repeats: int = 64
    max_request_groups: int = 32
    max_in_items: int = 128
    max_traits_per_group: int = 48
    # Admission control of GET /allocation_candidates, per worker: this many
    # run at once, up to candidates_queue_size more wait at most
    # candidates_queue_seconds, the rest answer 503 with Retry-After.
    candidates_max_in_flight: int = 4
    candidates_queue_size: int = 32
    candidates_queue_seconds: float = 5.0
    # Combination steps one allocation candidates request may take (-1: no
    # bound); past it the request is refused (400), bounding its time and memory.
    # 250,000 is far above real scheduler requests (about 1 step per candidate).
    candidates_max_combinations: int = 250_000
    # -- candidates snapshot --
    # GET /allocation_candidates reads a per-worker snapshot of inventories,
    # usages, traits and aggregates, never staler than this many seconds (0:
    # checked against the database on every request, one fingerprint row);
    # negative: no snapshot, every request runs the SQL.
    candidates_snapshot_max_age: float = 0.0
    # -- end candidates snapshot --

    @field_validator("cors_allowed_origins", "trusted_proxies", "config_files", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        # Accept the harness's comma list as well as a JSON list.
        return _comma_list(value)

    @property
    def docs_and_metrics_public(self) -> bool:
        if self.public_docs_and_metrics is None:
            return self.auth_strategy == "noauth2"
        return self.public_docs_and_metrics

    @field_validator("policy_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
