"""Sending one signed webhook request (no Django): the address rule, the signature, a bounded answer.

The address rule is checked on the addresses the host resolves to right before connecting, and the
connection goes to the very address that was checked (the URL's host travels in the Host header and in
TLS's server name), so a name that resolves to a public address at registration and to 127.0.0.1 later
(DNS rebinding) is still refused. Redirects are never followed: a 3xx is the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Labelloop-Signature"
TIMESTAMP_HEADER = "X-Labelloop-Timestamp"
EVENT_HEADER = "X-Labelloop-Event"
DELIVERY_HEADER = "X-Labelloop-Delivery"
USER_AGENT = "Labelloop-Webhooks/1"
EXCERPT_BYTES = 2048
READ_LIMIT_BYTES = 64 * 1024

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ValueError):
    """The URL may not be called: a bad scheme, no host, or an address the rule forbids. Safe to show."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + body): the timestamp is signed, so a replay is seen."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: int = 300) -> bool:
    """What a receiver does (docs/webhooks.md): the signature matches and the timestamp is recent."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def forbidden_reason(address: IpAddress) -> str | None:
    """Why an address may not be called (loopback, private, ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:  # ::ffff:127.0.0.1, 2002:7f00:1::, Teredo: the IPv4 address they carry decides
            address = embedded
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with its query


def parse_url(url: str) -> Target:
    """The parts of an http(s) URL, or AddressRefused saying what is wrong with it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("Use an http:// or https:// URL.")
    if parts.username or parts.password:
        raise AddressRefused("Put no user name or password in the URL; check the signature instead.")
    try:
        port = parts.port
    except ValueError:
        raise AddressRefused("The URL's port is not a number between 0 and 65535.") from None
    if not parts.hostname:
        raise AddressRefused("The URL has no host.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def resolve(target: Target, *, allow_private: bool) -> list[IpAddress]:
    """Every address the host resolves to; AddressRefused if it does not resolve or any address is forbidden."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"The host {target.host} does not resolve ({exc}).") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        reason = forbidden_reason(address)
        if reason is not None and not allow_private:
            raise AddressRefused(
                f"{target.host} resolves to {address}, a {reason} address: webhooks go to public addresses only."
            )
        addresses.append(address)
    if not addresses:
        raise AddressRefused(f"The host {target.host} does not resolve.")
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, connect_timeout: float, read_timeout: float) -> None:
        super().__init__(host, port, timeout=read_timeout)
        self._address, self._connect_timeout, self._read_timeout = address, connect_timeout, read_timeout

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), self._connect_timeout)
        sock.settimeout(self._read_timeout)
        return sock

    def connect(self) -> None:
        self.sock = self._open()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS, verifying the certificate against the URL's host name."""

    def connect(self) -> None:
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._open(), server_hostname=self.host)


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP answer (refused, timed out, connection error)
    excerpt: str
    duration_ms: int
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    connect_timeout: float,
    read_timeout: float,
) -> Outcome:
    """POST `body` to `url` once; never raises for network trouble, the outcome says what happened."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = parse_url(url)
        address = resolve(target, allow_private=allow_private)[0]
    except AddressRefused as exc:
        return Outcome(None, "", took(), str(exc))
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(
        target.host, target.port, address=str(address), connect_timeout=connect_timeout, read_timeout=read_timeout
    )
    try:
        connection.request("POST", target.path, body=body, headers={**headers, "User-Agent": USER_AGENT})
        response = connection.getresponse()
        data = response.read(READ_LIMIT_BYTES)
        return Outcome(response.status, data[:EXCERPT_BYTES].decode("utf-8", "replace"), took(), "")
    except TimeoutError:
        return Outcome(None, "", took(), f"Timed out (connect {connect_timeout:g}s, read {read_timeout:g}s).")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, "", took(), f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
