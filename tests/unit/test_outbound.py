"""The pure parts of outbound calls: which addresses are allowed, how requests are signed,
and when a request is retried and after how long."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from orchestrator.allow_entries import parse_entry
from orchestrator.outbound.allowlist import AllowList, DestinationRefused, is_public
from orchestrator.outbound.policy import Outcome, RetryPolicy, classify, parse_retry_after
from orchestrator.outbound.signing import signature, signed_headers, verify
from orchestrator.settings import Settings

DEFAULT = AllowList.parse([], allow_public=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public(ip)
    assert DEFAULT.refusal(ip) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed_by_default(address: str) -> None:
    assert DEFAULT.refusal(ipaddress.ip_address(address)) is None


def test_listed_networks_and_names_are_allowed() -> None:
    allow = AllowList.parse(
        ["127.0.0.1", "10.0.0.0/8", "hooks.internal", "*.corp.example"], allow_public=True
    )
    assert allow.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert allow.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert allow.address_allowed(ipaddress.ip_address("10.200.0.1"))
    assert not allow.address_allowed(ipaddress.ip_address("127.0.0.2"))
    assert allow.host_listed("HOOKS.internal.")
    assert allow.host_listed("a.b.corp.example")
    assert not allow.host_listed("corp.example")
    assert not allow.host_listed("evilcorp.example")


def test_without_public_only_listed_destinations_pass() -> None:
    allow = AllowList.parse(["203.0.113.0/24"], allow_public=False)
    assert allow.address_allowed(ipaddress.ip_address("203.0.113.9"))
    reason = allow.refusal(ipaddress.ip_address("1.1.1.1"))
    assert reason is not None
    assert "public addresses are not allowed" in reason


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/", "http"),
        ("https://user:pw@example.com/", "credentials"),
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("/relative", "absolute"),
    ],
)
def test_urls_are_checked_before_any_lookup(url: str, words: str) -> None:
    with pytest.raises(DestinationRefused, match=words):
        DEFAULT.check_url(url)


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    DEFAULT.check_resolved("example.com", ["93.184.216.34"])
    with pytest.raises(DestinationRefused, match=r"rebind\.example resolves to 10\.0\.0\.5"):
        DEFAULT.check_resolved("rebind.example", ["93.184.216.34", "10.0.0.5"])
    AllowList.parse(["rebind.example"], allow_public=True).check_resolved(
        "rebind.example", ["10.0.0.5"]
    )


@pytest.mark.parametrize("entry", ["", "not a host", "exa mple.com", "10.0.0.0/33"])
def test_bad_allow_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="outbound allow entry"):
        parse_entry(entry)


def test_the_allow_list_setting_reads_json_or_commas_and_checks_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKFILL_OUTBOUND_ALLOW", "127.0.0.1, *.corp.example")
    assert Settings().outbound_allow == ["127.0.0.1", "*.corp.example"]
    monkeypatch.setenv("BACKFILL_OUTBOUND_ALLOW", '["10.0.0.0/8"]')
    assert Settings().outbound_allow == ["10.0.0.0/8"]
    monkeypatch.setenv("BACKFILL_OUTBOUND_ALLOW", "not a host")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("BACKFILL_OUTBOUND_ALLOW")
    monkeypatch.setenv("BACKFILL_SIGNING_SECRETS", '{"hook": "s3cret"}')
    assert Settings().signing_secrets["hook"].get_secret_value() == "s3cret"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"rows":[]}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(b"k", 1_700_000_000, body) == "sha256=" + expected
    headers = signed_headers(b"k", 1_700_000_000, body)
    assert headers == {
        "X-Backfill-Timestamp": "1700000000",
        "X-Backfill-Signature": "sha256=" + expected,
    }


def test_verification_rejects_tampering_other_secrets_and_old_timestamps() -> None:
    body = b"{}"
    sig = signature(b"k", 1000, body)
    assert verify(b"k", "1000", sig, body, now=1100)
    assert not verify(b"k", "1000", sig, b"{ }", now=1100)
    assert not verify(b"other", "1000", sig, body, now=1100)
    assert not verify(b"k", "1000", sig, body, now=1000 + 301)
    assert not verify(b"k", None, sig, body, now=1000)
    assert not verify(b"k", "10x", sig, body, now=1000)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (301, Outcome.REJECTED),
        (400, Outcome.REJECTED),
        (401, Outcome.REJECTED),
        (404, Outcome.REJECTED),
        (408, Outcome.RETRY),
        (409, Outcome.REJECTED),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_statuses_are_classified(status: int, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_the_wait_honours_retry_after_within_its_cap_and_stops_at_the_last_attempt() -> None:
    policy = RetryPolicy(
        attempts=3,
        timeout_seconds=1,
        backoff_base_seconds=0.5,
        backoff_max_seconds=10,
        retry_after_max_seconds=60,
    )
    rng = random.Random(1)
    assert policy.wait_before_next(1, 7.0, rng) == 7.0
    assert policy.wait_before_next(1, 61.0, rng) is None
    first = policy.wait_before_next(1, None, rng)
    assert first is not None
    assert 0 <= first <= 0.5
    second = policy.wait_before_next(2, None, rng)
    assert second is not None
    assert 0 <= second <= 1.0
    assert policy.wait_before_next(3, None, rng) is None
