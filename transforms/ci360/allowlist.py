"""Where presigned URLs may be fetched from: checked before any request is made.

The webhook names two URLs that the function then GETs from inside the customer's account, so a
forged or tampered payload must not turn it into a proxy to the instance metadata service, a VPC
neighbour or the function's own loopback (SSRF). ``source_host_allowlist`` lists the origins a URL
may have, as comma-separated fnmatch patterns over ``scheme://host:port``:

- a pattern without a scheme means ``https``; without a port, the scheme's default port;
- ``aws:s3`` (the default) stands for S3's own https hostnames and nothing else: virtual-hosted
  (``bucket.s3.amazonaws.com``, ``bucket.s3.eu-west-1.amazonaws.com``) and path style
  (``s3.eu-west-1.amazonaws.com``), legacy dash-regional (``s3-eu-west-1``), dual-stack, FIPS,
  Transfer Acceleration and access points, in the ``amazonaws.com`` and ``amazonaws.com.cn``
  partitions. CI360 stages its files in S3;
- a wildcard pattern such as ``https://*.amazonaws.com`` is possible but admits every AWS hostname
  anyone can create (API Gateway, load balancers, VPC endpoints, EC2 public names): a forged payload
  could then make the function fetch from a server its author controls;
- some URLs are refused whatever the patterns say: other schemes than http/https, user info in the
  URL, link-local (169.254.0.0/16, fe80::/10) and instance-metadata addresses, unspecified,
  multicast and reserved addresses;
- loopback, private and other non-global addresses, and ``localhost``, pass only through a pattern
  that names them, i.e. whose host part does not start with a wildcard (``http://127.0.0.1:*``
  does; ``https://*`` does not).

Hosts are compared as written: names are never resolved here (DNS answers can change between the
check and the fetch), so an allowlist of names is only as tight as the names it admits.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import SplitResult, urlsplit

import urllib3.util
from urllib3.exceptions import LocationParseError

from transforms.errors import ValidationError

DEFAULT_ALLOWLIST = "aws:s3"
S3_KEYWORD = "aws:s3"
# S3's endpoint names: an optional bucket (or access point) label run, then s3 with its variants,
# an optional dual-stack label and region, then the partition's domain. Nothing else ends in these.
S3_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?\.)?"
    r"s3(?:-fips|-accelerate|-accesspoint)?"
    r"(?:[.-]dualstack)?"
    r"(?:[.-](?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}|external-1))?"
    r"\.amazonaws\.com(?:\.cn)?")
DEFAULT_PORTS = {"https": 443, "http": 80}
_WILDCARDS = "*?["

# Instance and task metadata endpoints that are not link-local: never fetched, whatever is allowed.
_METADATA_ADDRESSES = {
    ipaddress.ip_address("fd00:ec2::254"),  # EC2 IMDS over IPv6
    ipaddress.ip_address("fd00:ec2::23"),  # EC2 Time Sync / DNS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
}
_METADATA_NAMES = {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal",
                   "metadata.azure.internal"}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class OriginPattern:
    """One allowlist entry, split so that a host wildcard can never reach into the port."""

    scheme: str
    host: str  # fnmatch pattern, lowercase, IPv6 without brackets
    port: str  # fnmatch pattern over the decimal port
    text: str  # as written, for messages
    host_regex: re.Pattern[str] | None = None  # set for a keyword (aws:s3): the hosts it stands for

    @property
    def names_host(self) -> bool:
        """Does the pattern name its host (rather than admit any host)? Needed for local addresses."""
        return bool(self.host) and self.host[0] not in _WILDCARDS

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.host_regex is not None:
            return scheme == self.scheme and bool(self.host_regex.fullmatch(host)) and str(port) == self.port
        return scheme == self.scheme and fnmatchcase(host, self.host) and fnmatchcase(str(port), self.port)


def parse_allowlist(text: str) -> tuple[OriginPattern, ...]:
    """Parse the setting; raises ``ValueError`` with a message naming the bad entry."""
    patterns = []
    for entry in text.split(","):
        raw = entry.strip()
        if not raw:
            continue
        if raw.lower() == S3_KEYWORD:
            patterns.append(OriginPattern("https", "s3", "443", raw, S3_HOST))
            continue
        scheme, sep, rest = raw.partition("://")
        if not sep:
            scheme, rest = "https", raw
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"source_host_allowlist entry {raw!r}: the scheme must be http or https")
        if not rest or any(ch in rest for ch in "/@?#") or _UNSAFE_CHARS.search(rest):
            raise ValueError(f"source_host_allowlist entry {raw!r} must be [scheme://]host[:port], "
                             "without a path, user info or spaces")
        if rest.startswith("["):  # an IPv6 literal: [::1] or [::1]:port
            host, bracket, after = rest[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise ValueError(f"source_host_allowlist entry {raw!r} has an unclosed IPv6 bracket")
            port = after[1:] if after else ""
        elif rest.count(":") > 1:
            raise ValueError(f"source_host_allowlist entry {raw!r}: write an IPv6 address in brackets")
        else:
            host, _, port = rest.partition(":")
        if not host:
            raise ValueError(f"source_host_allowlist entry {raw!r} has no host")
        if rest.endswith(":") or (port and not re.fullmatch(r"[0-9*?\[\]!-]+", port)):
            raise ValueError(f"source_host_allowlist entry {raw!r} has a bad port")
        patterns.append(OriginPattern(scheme, host.lower().rstrip("."), port or str(DEFAULT_PORTS[scheme]),
                                      raw))
    if not patterns:
        raise ValueError("source_host_allowlist lists no origin")
    return tuple(patterns)


DEFAULT_PATTERNS = parse_allowlist(DEFAULT_ALLOWLIST)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is where it leads."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host literal denotes, including the legacy IPv4 spellings the resolver
    accepts (``2130706433``, ``0x7f.1``, ``127.1``); None for a name. Never a DNS query."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", host) or not re.search(r"\d", host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))  # parsing only, as the resolver does
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).partition("%")[0])  # drop a zone id
        return _embedded_ipv4(address) or address
    return address


def _refuse(path: str, why: str) -> ValidationError:
    # Name the field and say why; never echo the URL (its query string is a credential).
    return ValidationError(f"{path} {why}", [{"field": path}])


def _split(url: str, path: str) -> tuple[SplitResult, str, int]:
    if _UNSAFE_CHARS.search(url):
        raise _refuse(path, "contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise _refuse(path, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse(path, "must be an http or https URL")
    if "@" in parts.netloc:
        raise _refuse(path, "must not carry user info (user:password@) in the URL")
    if not host:
        raise _refuse(path, "has no host")
    if not parts.netloc.isascii():
        raise _refuse(path, "has a host that is not ASCII")
    port = DEFAULT_PORTS[scheme] if port is None else port
    if port == 0:
        raise _refuse(path, "has port 0")
    # urllib3 makes the request: it must read the same origin as this check did.
    try:
        theirs = urllib3.util.parse_url(url)
    except (LocationParseError, ValueError):
        raise _refuse(path, "is not a valid URL") from None
    their_host = (theirs.host or "").strip("[]").lower()
    if (theirs.scheme or "").lower() != scheme or their_host != host or (theirs.port or port) != port:
        raise _refuse(path, "is ambiguous: it does not name one host")
    return parts, host, port


def check_source_url(url: str, path: str, patterns: tuple[OriginPattern, ...] = DEFAULT_PATTERNS) -> str:
    """Refuse ``url`` (a ``ValidationError`` naming ``path``) unless it may be fetched; else return it."""
    parts, host, port = _split(url, path)
    scheme = parts.scheme.lower()
    name = host.rstrip(".")
    origin = f"{scheme}://{'[' + name + ']' if ':' in name else name}:{port}"
    address = _address(name)
    local = False
    if address is not None:
        if address.is_link_local or address in _METADATA_ADDRESSES:
            raise _refuse(path, f"points at a link-local or instance-metadata address ({origin}), "
                                "which is never fetched")
        if address.is_loopback:
            local = True
        elif address.is_unspecified or address.is_multicast or address.is_reserved:
            raise _refuse(path, f"points at an address that is not a host ({origin})")
        else:
            local = not address.is_global
    elif name in _METADATA_NAMES:
        raise _refuse(path, f"points at an instance-metadata host ({origin}), which is never fetched")
    else:
        local = name == "localhost" or name.endswith(".localhost") or name == "localhost.localdomain"
    for pattern in patterns:
        if pattern.matches(scheme, name, port) and (pattern.names_host or not local):
            return url
    if local:
        raise _refuse(path, f"points at a local or private address ({origin}) that no "
                            "source_host_allowlist entry names")
    raise _refuse(path, f"is not from an allowed origin: {origin} matches no source_host_allowlist entry")
