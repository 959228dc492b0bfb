"""Outbound allow-list entries as BACKFILL_OUTBOUND_ALLOW names them: an address, a network,
a host name or *.domain. Parsed here, below the settings, so a bad entry fails when the
settings load; orchestrator.outbound.allowlist judges destinations against them."""

from __future__ import annotations

import ipaddress

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_entry(entry: str) -> IPNetwork | str:
    """An allow-list entry: a network (an address is a /32 or /128), or a lower-case host
    name, possibly "*.suffix"."""
    text = entry.strip().lower().rstrip(".")
    if not text:
        raise ValueError("an empty outbound allow entry")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    name = text[2:] if text.startswith("*.") else text
    labels = name.split(".")
    if not all(label and len(label) <= 63 and _is_label(label) for label in labels):
        raise ValueError(
            f"outbound allow entry {entry!r} is neither an address, a network, a host name "
            "nor *.domain"
        )
    return text


def _is_label(label: str) -> bool:
    return all(c.isalnum() or c in "-_" for c in label) and label.isascii()
