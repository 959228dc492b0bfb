from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.compat.registry import DIALECTS
from api.cors import allowed_headers, allowed_origin, origins_for
from orchestrator.settings import Settings


def test_origins_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKFILL_CORS_ORIGINS", "https://app.example.com, http://localhost:3000")
    assert Settings().cors_origins == ["https://app.example.com", "http://localhost:3000"]


@pytest.mark.parametrize("bad", ["https://app.example.com/", "app.example.com", "ftp://x", "*.x"])
def test_a_value_that_is_not_an_origin_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(cors_origins=[bad])
    assert repr(bad) in str(info.value)


def test_defaults_are_any_origin_for_compatibility_apis_and_none_for_the_native_one() -> None:
    settings = Settings()
    assert origins_for(settings, None) == []
    for dialect in DIALECTS:
        assert origins_for(settings, dialect) == ["*"]
    configured = Settings(cors_origins=["https://a.example"])
    assert origins_for(configured, None) == ["https://a.example"]
    for dialect in DIALECTS:
        assert origins_for(configured, dialect) == ["https://a.example"]


def test_an_origin_is_allowed_only_when_listed() -> None:
    assert allowed_origin(["*"], None) == "*"
    assert allowed_origin(["https://a.example"], "https://a.example") == "https://a.example"
    assert allowed_origin(["https://a.example"], "https://b.example") is None
    assert allowed_origin([], "https://a.example") is None


def test_preflights_allow_the_request_headers_and_every_dialects_key_header() -> None:
    assert allowed_headers(()) == "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
    assert (
        allowed_headers(DIALECTS)
        == "Authorization, Content-Type, Idempotency-Key, X-API-KEY, X-Request-ID"
    )
