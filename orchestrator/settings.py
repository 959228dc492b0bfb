"""The one settings object. Built in the CLI, passed down, never a global."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orchestrator.allow_entries import parse_entry
from orchestrator.origins import check_origin

# The name the rabbitmq sink's default broker goes by (BACKFILL_AMQP_URL). Sources have no
# implicit member: a source named "main" exists only when an operator configures one.
MAIN_SOURCE = "main"


class SourceConfig(BaseModel):
    """One named source database, as the operator configures it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dsn: SecretStr
    # Skips the role checks made on start and first connect (superuser, server file and
    # program roles, reach into the orchestrator's schema); /ops/ready and the log say so.
    unsafe: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore", frozen=True)

    database_url: SecretStr = SecretStr("postgresql://127.0.0.1:5432/backfill")
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Where a `backfill worker` serves /metrics and /ops/health (on http_host); unset: not
    # served, 0: a free port chosen at start. Processes with the API serve them on http_port.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    # Named source databases that targets may read from or write to, once an operator has
    # granted them to a team (`backfill sources grant`). API users name a source; the DSN
    # never leaves the server. JSON: {"name": "dsn"} or {"name": {"dsn": …, "unsafe": true}}.
    sources: Annotated[dict[str, SourceConfig], NoDecode] = Field(default_factory=dict)
    # On `backfill up`, set up the source `demo` (a least-privilege role on this database,
    # granted to team 1) when none is configured and this database role may create roles.
    demo_source: bool = True

    # Every exchange and queue name starts with this, so several deployments (or test
    # runs) can share one broker without seeing each other's messages.
    amqp_prefix: str = "backfills"
    amqp_prefetch: int = Field(default=8, ge=1)
    delivery_limit: int = Field(default=5, ge=1)

    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)

    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    reaper_seconds: float = Field(default=5.0, gt=0)
    dispatch_sweep_seconds: float = Field(default=5.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # A queued run whose dispatch message has not been claimed for this long is
    # published again; duplicates are harmless because claims are conditional.
    redispatch_after_seconds: float = Field(default=60.0, gt=0)
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=300.0, ge=0)
    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # How often each running backfill gets an `event.backfill.progress` (0: never).
    progress_event_seconds: float = Field(default=15.0, ge=0)
    # Runs one worker process executes at once. It is also what the worker adds to the
    # dispatch capacity below while it is up, so a worker can hold every run dispatched for
    # it (a busy backfill's runs then go from one batch to the next without a message).
    worker_concurrency: int = Field(default=16, ge=1)
    # Runs queued or running across all backfills that the dispatcher shares out by
    # priority. Unset: the summed worker_concurrency of the worker processes up now (from
    # their heartbeats), so a worker that starts adds its slots and one that stops takes
    # them away; set it to pin the capacity instead.
    dispatch_capacity: int | None = Field(default=None, ge=1)
    planner_batch_runs: int = Field(default=100, ge=1)
    # A cancel marks at most this many pending runs cancelled in its own transaction; a
    # bigger backfill's are counted at once and marked by the workers' sweep right after.
    cancel_inline_runs: int = Field(default=1000, ge=0)
    read_batch_rows: int = Field(default=1000, ge=1)
    # Source reads adapt: a page starts at read_batch_rows and grows (up to read_batch_max_rows)
    # while pages take under a quarter of read_page_seconds, shrinking when one takes longer.
    # Every statement on a source connection is cancelled after source_statement_timeout_seconds
    # (a cancelled page is retried smaller), so no read holds a busy source for long.
    read_batch_max_rows: int = Field(default=50_000, ge=1)
    read_page_seconds: float = Field(default=1.0, gt=0)
    source_statement_timeout_seconds: float = Field(default=30.0, gt=0)

    # A date-range backfill that would make more runs than this is refused (422).
    max_runs_per_backfill: int = Field(default=1_000_000, ge=1)

    # Authentication and limits.
    bootstrap_token: SecretStr | None = None
    rate_limit_requests: int = Field(default=1200, ge=0)  # per key and period; 0: no limit
    rate_limit_period_seconds: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # /ops/ready, /ops/overview and /metrics need a key when true; /ops/health never does.
    ops_auth: bool = False
    # Browser origins allowed to call the API (CORS): "*" or origins such as
    # "https://app.example.com", comma-separated. Unset: "*" on the compatibility APIs (as
    # the systems they copy answer) and no origin on the native API.
    cors_origins: Annotated[list[str] | None, NoDecode] = None

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a terminal

    # Destinations and handlers that reach other systems (the rabbitmq and webhook sinks, the
    # http and python handlers); docs/destinations.md describes each.
    #
    # Outbound HTTP may reach public addresses (when outbound_allow_public) and whatever
    # outbound_allow lists: IPs or networks ("10.0.0.0/8", "127.0.0.1"), host names
    # ("hooks.internal") or "*.example.com". Everything else (loopback, private, link-local,
    # cloud metadata) is refused, so an API user cannot make the service call inside.
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    outbound_allow_public: bool = True
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)
    outbound_attempts: int = Field(default=5, ge=1)  # per request, before the run fails
    outbound_backoff_base_seconds: float = Field(default=0.5, ge=0)
    outbound_backoff_max_seconds: float = Field(default=30.0, ge=0)
    # A Retry-After longer than this fails the request instead of holding the run.
    outbound_retry_after_max_seconds: float = Field(default=120.0, ge=0)
    # Named secrets that webhook sinks and http handlers sign with. Targets name one, so the
    # secret itself is never stored in a target nor echoed by the API.
    signing_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    # Brokers the rabbitmq sink may publish to, by name; "main" is amqp_url.
    sink_brokers: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    # Modules (and their submodules) whose functions the python handler may import by path;
    # handlers registered under the entry point group need no listing.
    python_handler_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("sources", mode="before")
    @classmethod
    def _parse_sources(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
            if not isinstance(value, dict):
                raise ValueError('BACKFILL_SOURCES must be a JSON object {"name": "dsn"}')
        if isinstance(value, dict):
            # The older {"name": "dsn"} form is a source with default options.
            return {
                name: {"dsn": entry} if isinstance(entry, str | SecretStr) else entry
                for name, entry in value.items()
            }
        return value

    @field_validator("signing_secrets", "sink_brokers", mode="before")
    @classmethod
    def _parse_named(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = json.loads(value) if value.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError('expected a JSON object {"name": "value"}')
            return parsed
        return value

    @field_validator("outbound_allow", "python_handler_modules", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        # A JSON list, or the friendlier comma-separated form for an environment variable.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("outbound_allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_entry(entry)  # raises ValueError naming the bad entry
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in levels:
            raise ValueError(f"not a log level; allowed: {', '.join(levels)}")
        return value.upper()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str] | None) -> list[str] | None:
        for origin in value or []:
            check_origin(origin)  # raises ValueError naming the bad origin
        return value

    def source_names(self) -> list[str]:
        return sorted(self.sources)

    def source_dsn(self, name: str) -> str | None:
        config = self.sources.get(name)
        return config.dsn.get_secret_value() if config is not None else None

    def with_source(self, name: str, config: SourceConfig) -> Settings:
        """These settings with one more source (a source set up on start, like `demo`)."""
        return self.model_copy(update={"sources": {**self.sources, name: config}})
