"""Configuration, read from `STICKERQ_*` environment variables (and an optional `.env`).

Made once at the edge (CLI, worker start) and passed down; no module reads the
environment on import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stickerq.accounts import (
    POD_DOMAINS,
    Account,
    find_account,
    read_accounts_file,
    read_accounts_json,
)
from stickerq.errors import ConfigurationError
from stickerq.redis_client import SENTINEL_SCHEME, RedisTarget, parse_sentinel_url

__all__ = ["POD_DOMAINS", "Settings", "default_database_url"]


def default_database_url() -> str:
    """The embedded SQLite file in the user's data folder (~/.local/share/stickerq on Linux),
    not in the working directory: a worker and a `send` started in two folders share it."""
    return f"sqlite:///{Path(user_data_dir('stickerq')) / 'stickerq.db'}"


class Settings(BaseSettings):
    # An empty variable is unset: docker compose's `${STICKERQ_X:-}` passes "" for "not set".
    # allow_inf_nan: a delay or timeout of `inf` (or `1e999`) overflowed the worker's
    # arithmetic on times; `nan` compares false with everything.
    model_config = SettingsConfigDict(
        env_prefix="STICKERQ_",
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
        allow_inf_nan=False,
    )

    # One file per user, wherever a command runs (`stickerq config` says where).
    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLite for one host (default: a file in the user's data folder), "
        "postgresql://user@host/db for production; behind PgBouncer in transaction mode, "
        "postgresql://user@pgbouncer:6432/db?pooler=pgbouncer (prepared statements off: "
        "docs/deployment.md)",
    )
    redis_url: str = Field(
        default="redis://localhost:6379/0",
        description="broker, limiter and pause mirror: redis://, rediss://, unix://, or "
        "Sentinels as sentinel://h1:26379;sentinel://h2:26380/0 (the database number last) "
        "with STICKERQ_REDIS_SENTINEL_MASTER",
    )
    redis_sentinel_master: str | None = Field(
        default=None,
        description="with a sentinel:// STICKERQ_REDIS_URL: the name the Sentinels monitor "
        "the master by (`sentinel monitor <name> ...`)",
    )
    redis_sentinel_password: SecretStr = Field(
        default=SecretStr(""),
        description="the Sentinels' own password (`requirepass` of the Sentinels), if they "
        "ask one; the master's goes in the URL (sentinel://:password@h1:26379;...)",
    )
    # Every Redis key (queues, limiter buckets, pause mirrors) starts with this, so that
    # several deployments or test runs can share one Redis.
    redis_prefix: str = Field(default="stickerq:", description="prefix of every Redis key")

    kaleyra_sid: str = Field(default="HXAP16XXXXXX97IN", description="Kaleyra account SID")
    kaleyra_api_key: SecretStr = Field(
        default=SecretStr(""), description="the api-key: never logged, stored or shown"
    )
    kaleyra_pod: Literal["in", "ap", "eu"] = Field(
        default="in", description="the pod: https://api.<pod>.kaleyra.io"
    )
    kaleyra_base_url: str | None = Field(
        default=None, description="overrides the pod (the sandbox, a proxy)"
    )
    accounts_file: Path | None = Field(
        default=None,
        description="a TOML or JSON file listing several Kaleyra accounts (sid, api_key, pod, "
        "base_url, senders), instead of the STICKERQ_KALEYRA_* account (docs/deployment.md)",
    )
    accounts: SecretStr = Field(
        default=SecretStr(""),
        description="the same list as JSON, instead of a file; it holds api-keys: never shown",
    )
    sender: str | None = Field(default=None, description="default business number, E.164")
    default_region: str | None = Field(
        default=None, description="Region (e.g. IN) for recipient numbers written without +"
    )

    rate_per_second: float = Field(
        default=80.0, gt=0, description="messages per second per sender, across all workers"
    )
    pair_interval_seconds: float = Field(
        default=6.0,
        ge=0,
        description="least time between two messages from one sender to one recipient, "
        "across campaigns and workers (WhatsApp's pair rate limit, 131056); 0: no guard",
    )
    batch_size: int = Field(
        default=200, ge=1, le=5000, description="message ids per send_batch task"
    )
    # 150: where the 2-core bench machine runs out of CPU at 100 ms latency (docs/performance.md)
    in_flight: int = Field(default=150, ge=1, description="concurrent requests per worker process")
    batches_per_process: int = Field(
        default=4,
        ge=1,
        description="batches a worker process sends at once (their requests share in_flight)",
    )
    connect_timeout: float = Field(default=5.0, description="seconds to connect to Kaleyra")
    read_timeout: float = Field(default=30.0, description="seconds to wait for Kaleyra's answer")

    quick_attempts: int = Field(default=3, ge=1, description="WA500 attempts inside one send")
    quick_backoff_seconds: float = Field(
        default=0.5, description="backoff between quick attempts: from this up to 8x, full jitter"
    )
    retry_delays_seconds: list[float] = Field(
        default=[300.0, 600.0, 900.0], description="durable WA500 retries after the quick ones"
    )
    connect_retry_seconds: float = Field(
        default=5.0,
        description="seconds before a message whose request never left (no connection) goes again",
    )
    valid_for: str | None = Field(
        default=None,
        description="default deadline of a campaign's messages, counted from its start "
        "(`send --valid-for`): 6h, 90m, 1d; a message not sent by then expires; unset: no limit",
    )
    in_window: bool = Field(
        default=False,
        description="default of `send --in-window`: send only to recipients whose 24-hour "
        "window with the sender is open (the window ledger); the others end outside_window",
    )
    window_margin_seconds: float = Field(
        default=60.0,
        ge=0,
        description="an in-window message must go this long before its window ends (last "
        "inbound message + 24 h): its deadline",
    )
    dispatch_interval_seconds: float = Field(
        default=2.0, description="how often beat dispatches due retries and due campaigns"
    )
    sweep_interval_seconds: float = Field(
        default=15.0, description="how often the sweeper settles dead claims"
    )
    claim_heartbeat_seconds: float = Field(
        default=30.0, gt=0, description="a claim whose heartbeat is this old is taken for dead"
    )
    wa400_pause_threshold: int = Field(
        default=20, ge=1, description="WA400s in a row that auto-pause a campaign"
    )
    api_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="bearer tokens of the HTTP API, comma-separated; TOKEN:ro is read-only",
    )
    api_max_body_bytes: int = Field(
        default=10_000_000,
        ge=1024,
        description="largest JSON or form body the HTTP API reads, counted as it arrives (413)",
    )
    api_max_upload_bytes: int = Field(
        default=256_000_000,
        ge=1024,
        description="largest CSV upload the HTTP API reads (POST /campaigns multipart, "
        "POST /suppressions/import), streamed to disk (413)",
    )
    api_own_process_bytes: int = Field(
        default=1 << 20,
        ge=0,
        description="a CSV upload this large, or a JSON campaign of a fiftieth as many "
        "recipients, is stored in a child process of the API so other requests keep their "
        "pace (0: every campaign)",
    )
    api_max_json_recipients: int = Field(
        default=100_000,
        ge=1,
        description="most recipients one JSON campaign carries; upload a CSV for more (422)",
    )
    session_idle_minutes: int = Field(
        default=60, ge=1, description="a dashboard session unused this long ends"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="log lines of the worker, the API and the CLI: readable text, or one JSON "
        "object a line",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="bearer token /metrics asks for (API and worker); empty: /metrics is open",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="the worker serves Prometheus /metrics on this port (`worker --metrics-port`)",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="address the worker's /metrics listens on"
    )
    callback_secret: SecretStr = Field(
        default=SecretStr(""),
        description="the secret in the callback URL given to Kaleyra "
        "(/callbacks/kaleyra/<secret>); unset, the API takes no callbacks",
    )
    callback_basic_auth: SecretStr = Field(
        default=SecretStr(""),
        description="USER:PASSWORD that callbacks must also carry as HTTP basic auth "
        "(Kaleyra's callback profiles can send it); unset, none is asked",
    )
    erasure_key: SecretStr = Field(
        default=SecretStr(""),
        description="key of the HMAC-SHA256 that keeps an erased number suppressed (`stickerq "
        "erase`): the same on every host, never changed; unset, a suppressed number cannot be "
        "erased. Make one with `openssl rand -hex 32`",
    )
    unknown_callback_days: float = Field(
        default=7.0,
        gt=0,
        description="callbacks of no known message (`stickerq callbacks unknown`) are deleted "
        "this many days after they arrived (beat's purge)",
    )
    unknown_callback_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="at most this many callbacks of no known message are kept: beat's purge "
        "deletes the oldest beyond it",
    )

    retention_days: int = Field(
        default=30,
        ge=0,
        description="a finished campaign's messages and their attempts are deleted this many "
        "days after it finished, by beat, in batches (its counts and report stay); 0 keeps "
        "them for ever; an account of STICKERQ_ACCOUNTS_FILE may set its own retention_days",
    )

    archive_dir: Path | None = Field(
        default=None,
        description="before a campaign's messages are purged, its export is written here as "
        "campaign-<id>.csv.gz (a campaign whose file cannot be written keeps its rows); unset, "
        "nothing is archived",
    )

    sticker_check_allow_hosts: str = Field(
        default="",
        description="hosts (comma-separated, `host` or `host:port`) that `send --sticker-link` "
        "may check although they are internal, over http too: tests and local demos only",
    )

    webhook_allow_hosts: str = Field(
        default="",
        description="hosts (comma-separated, `host` or `host:port`) that webhook URLs may name "
        "although they are internal, over http too (a local receiver): tests and demos only",
    )
    webhook_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="beat delivers due webhook events this often: message events wait at most "
        "about this long to be batched",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a webhook POST that takes longer has failed"
    )
    webhook_batch_size: int = Field(
        default=500, ge=1, le=5000, description="message events per webhook POST, at most"
    )
    webhook_retry_first_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a failed webhook POST is tried again after a random time up to this, "
        "doubling each time (capped by STICKERQ_WEBHOOK_RETRY_CAP_SECONDS)",
    )
    webhook_retry_cap_seconds: float = Field(
        default=3600.0, gt=0, description="the longest wait before a webhook POST is tried again"
    )
    webhook_retry_for_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="an event not delivered this long after it happened is marked failed",
    )
    webhook_disable_after_seconds: float = Field(
        default=259200.0,
        gt=0,
        description="an endpoint whose every POST failed for this long (3 days) is disabled",
    )
    webhook_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="delivered and failed webhook events are deleted this many days after "
        "they happened (beat's purge); `stickerq webhooks deliveries` shows them until then",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        """A URL SQLAlchemy reads, of a database it knows (else every command's traceback)."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(url).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError):
            raise ValueError(
                "not a database URL stickerq can use: give sqlite:///path/to/stickerq.db or "
                "postgresql://user@host/db"
            ) from None
        from stickerq.db import pooler_of
        from stickerq.errors import ConfigurationError

        try:
            pooler_of(url)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str) -> str:
        if url.startswith(SENTINEL_SCHEME):
            parse_sentinel_url(url)
        elif not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "a Redis URL starts with redis://, rediss://, unix:// or sentinel:// "
                "(sentinel://h1:26379;sentinel://h2:26380/0)"
            )
        return url

    @model_validator(mode="after")
    def _sentinel_master_named(self) -> Settings:
        if self.redis_url.startswith(SENTINEL_SCHEME) and not self.redis_sentinel_master:
            raise ValueError(
                "a sentinel:// STICKERQ_REDIS_URL needs STICKERQ_REDIS_SENTINEL_MASTER: the "
                "name the Sentinels monitor the master by (`sentinel monitor <name> ...`)"
            )
        return self

    @property
    def redis_target(self) -> RedisTarget:
        """Where Redis is, for stickerq.redis_client's factory and Celery's broker."""
        return RedisTarget(
            self.redis_url,
            self.redis_sentinel_master,
            self.redis_sentinel_password.get_secret_value() or None,
        )

    @property
    def kaleyra_url(self) -> str:
        return (self.kaleyra_base_url or POD_DOMAINS[self.kaleyra_pod]).rstrip("/")

    def all_accounts(self) -> tuple[Account, ...]:
        """The configured Kaleyra accounts: the listed ones (STICKERQ_ACCOUNTS_FILE or
        STICKERQ_ACCOUNTS; STICKERQ_KALEYRA_SID and _POD are then unused, and
        STICKERQ_KALEYRA_BASE_URL is the base URL of each that gives none), else the one of
        the STICKERQ_KALEYRA_* settings.

        Read again on each call (a small file): a worker reads it once, at start."""
        listed = self._listed_accounts()
        if listed is None:
            return (
                Account.model_construct(
                    sid=self.kaleyra_sid,
                    api_key=self.kaleyra_api_key,
                    pod=self.kaleyra_pod,
                    base_url=self.kaleyra_base_url,
                    senders=(),
                ),
            )
        if self.kaleyra_base_url is None:
            return listed
        return tuple(
            account
            if account.base_url is not None
            else account.model_copy(update={"base_url": self.kaleyra_base_url})
            for account in listed
        )

    @property
    def lists_accounts(self) -> bool:
        """True: the accounts come from STICKERQ_ACCOUNTS_FILE or STICKERQ_ACCOUNTS."""
        return self.accounts_file is not None or bool(self.accounts.get_secret_value().strip())

    def account(self, sid: str | None = None) -> Account:
        """The account named `sid`; None: the only one (an error when several are listed)."""
        return find_account(self.all_accounts(), sid)

    def _listed_accounts(self) -> tuple[Account, ...] | None:
        text = self.accounts.get_secret_value().strip()
        if not self.lists_accounts:
            return None
        if self.accounts_file is not None and text:
            raise ConfigurationError(
                "both STICKERQ_ACCOUNTS_FILE and STICKERQ_ACCOUNTS are set: keep one list of "
                "accounts, unset the other"
            )
        if self.kaleyra_api_key.get_secret_value():
            where = "STICKERQ_ACCOUNTS_FILE" if self.accounts_file else "STICKERQ_ACCOUNTS"
            raise ConfigurationError(
                f"{where} lists the Kaleyra accounts, and STICKERQ_KALEYRA_API_KEY is set too: "
                "unset STICKERQ_KALEYRA_API_KEY (each listed account has its own api_key)"
            )
        if self.accounts_file is not None:
            return read_accounts_file(self.accounts_file)
        return read_accounts_json(text)

    def as_environment(self) -> dict[str, str]:
        """These settings as STICKERQ_* variables for a child process (secrets stay out of argv)."""
        env = {}
        for name, value in self.model_dump(mode="json").items():
            if value is None:
                # "" is unset (env_ignore_empty), rather than inherited from this process's
                # own environment (a STICKERQ_ACCOUNTS_FILE the settings were made without)
                env[f"STICKERQ_{name.upper()}"] = ""
                continue
            if isinstance(getattr(self, name), SecretStr):
                value = getattr(self, name).get_secret_value()
            env[f"STICKERQ_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        return env
