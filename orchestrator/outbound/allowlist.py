"""Which hosts outbound requests may reach. The point is that an API user, who chooses the
URL, cannot make the service call into its own network (databases, admin ports, the cloud
metadata service) unless an operator allowed that destination.

A destination is allowed when its host name is listed, or when every address it resolves to
is public (and public addresses are allowed) or inside a listed network. Addresses are
checked after resolution, at validation time and again on every request, so a name that
resolves differently later (DNS rebinding) is caught where the connection is made."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from yarl import URL

from orchestrator.allow_entries import IPNetwork, parse_entry

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 5.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


class DestinationRefused(OSError):
    """The destination is not allowed. An OSError so that, raised from aiohttp's resolver,
    it travels as the cause of the connection error and can be told apart from a
    network failure (which is retried; this is not)."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any: those
    reach IPv4 hosts, so they are judged as the IPv4 address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIXTOFOUR:
        return ip.sixtofour
    return None


def is_public(ip: IPAddress) -> bool:
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    return ip.is_global and not ip.is_multicast


def describe(ip: IPAddress) -> str:
    """Why an address is not public, in words an operator recognises."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return describe(inner)
    for attribute, words in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attribute):
            return words
    return "not a public address"


@dataclass(frozen=True)
class AllowList:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.com" for "*.example.com"
    allow_public: bool = True

    @classmethod
    def parse(cls, entries: list[str], *, allow_public: bool) -> AllowList:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for entry in entries:
            parsed = parse_entry(entry)
            if isinstance(parsed, str):
                if parsed.startswith("*."):
                    suffixes.append(parsed[1:])
                else:
                    hosts.add(parsed)
            else:
                networks.append(parsed)
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes), allow_public)

    def host_listed(self, host: str) -> bool:
        """A listed name is trusted whatever it resolves to: the operator vouched for it."""
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(s) for s in self.suffixes)

    def address_allowed(self, ip: IPAddress) -> bool:
        candidates = [ip]
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append(inner)
        if any(c in net for c in candidates for net in self.networks if c.version == net.version):
            return True
        return self.allow_public and is_public(ip)

    def refusal(self, ip: IPAddress) -> str | None:
        """None if the address may be reached, else why not."""
        if self.address_allowed(ip):
            return None
        if is_public(ip):
            return f"{ip} is not in BACKFILL_OUTBOUND_ALLOW (public addresses are not allowed)"
        return f"{ip} is {describe(ip)}, which BACKFILL_OUTBOUND_ALLOW does not list"

    def check_url(self, url: str | URL) -> URL:
        """Checks what can be checked without resolving: scheme, credentials, and a host
        that is an address. Raises DestinationRefused."""
        parsed = url if isinstance(url, URL) else _parse(url)
        if parsed.scheme not in ("http", "https"):
            raise DestinationRefused("the URL must be http:// or https://")
        if parsed.user is not None or parsed.password is not None:
            # Credentials in the URL would be stored and shown with the target.
            raise DestinationRefused("the URL must not carry credentials; sign with a secret")
        host = parsed.raw_host
        if not host:
            raise DestinationRefused("the URL has no host")
        ip = literal_address(host)
        if ip is not None and not self.host_listed(host):
            reason = self.refusal(ip)
            if reason is not None:
                raise DestinationRefused(reason)
        return parsed

    def check_resolved(self, host: str, addresses: list[str]) -> None:
        if self.host_listed(host):
            return
        for address in addresses:
            reason = self.refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise DestinationRefused(f"{host} resolves to {reason}")

    async def check_destination(self, url: str) -> URL:
        """The full check made when a target is created: the URL, then every address its
        host resolves to now."""
        parsed = self.check_url(url)
        host = parsed.raw_host
        assert host is not None
        if literal_address(host) is not None or self.host_listed(host):
            return parsed
        try:
            # Bounded: this runs inside an API request, and a resolver can hang for long.
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, parsed.port, type=socket.SOCK_STREAM
                )
        except socket.gaierror as exc:
            raise DestinationRefused(f"{host} does not resolve: {exc.strerror}") from None
        except TimeoutError:
            raise DestinationRefused(
                f"{host} did not resolve within {RESOLVE_TIMEOUT_SECONDS:g}s"
            ) from None
        self.check_resolved(host, [str(info[4][0]) for info in infos])
        return parsed


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _parse(url: str) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise DestinationRefused(f"not a URL: {exc}") from None
    if not parsed.is_absolute():
        raise DestinationRefused("the URL must be absolute (http://host/...)")
    return parsed
