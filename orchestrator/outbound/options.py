"""Options shared by everything that POSTs to a user's URL (the webhook sink, the http
handler), and their checks when a target is created or changed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ValidationFailed
from orchestrator.outbound.allowlist import DestinationRefused
from orchestrator.outbound.client import allow_list, retry_policy
from orchestrator.outbound.policy import RetryPolicy
from orchestrator.settings import Settings


class HttpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL to POST to; must pass BACKFILL_OUTBOUND_ALLOW",
    )
    signing_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Name of a secret in BACKFILL_SIGNING_SECRETS; requests are signed with it",
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=600,
        description="Per request; default BACKFILL_OUTBOUND_TIMEOUT_SECONDS",
    )
    request_attempts: int | None = Field(
        default=None, ge=1, le=20, description="Per request; default BACKFILL_OUTBOUND_ATTEMPTS"
    )

    def policy(self, settings: Settings) -> RetryPolicy:
        return retry_policy(
            settings, attempts=self.request_attempts, timeout_seconds=self.timeout_seconds
        )


def signing_secret(options: HttpOptions, settings: Settings, pointer: str) -> bytes | None:
    if options.signing_secret is None:
        return None
    secret = settings.signing_secrets.get(options.signing_secret)
    if secret is None:
        known = ", ".join(sorted(settings.signing_secrets)) or "none"
        raise ValidationFailed(
            f"unknown signing secret {options.signing_secret!r}",
            errors=[
                {
                    "pointer": f"{pointer}/signing_secret",
                    "message": "must name a secret in BACKFILL_SIGNING_SECRETS "
                    f"(configured: {known})",
                }
            ],
        )
    return secret.get_secret_value().encode()


async def check_http_options(options: HttpOptions, settings: Settings, pointer: str) -> None:
    """422 when the URL is not allowed (checked against what its host resolves to now) or
    the signing secret is unknown."""
    try:
        await allow_list(settings).check_destination(options.url)
    except DestinationRefused as exc:
        raise ValidationFailed(
            f"the URL is not allowed: {exc}",
            errors=[{"pointer": f"{pointer}/url", "message": str(exc)}],
        ) from None
    signing_secret(options, settings, pointer)
