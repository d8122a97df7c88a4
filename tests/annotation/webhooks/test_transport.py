"""The pure part of webhooks: the signature a receiver checks, and the rule on which addresses may be called."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from annotation.webhooks import transport
from annotation.webhooks.transport import AddressRefused, forbidden_reason, parse_url, resolve, sign, verify


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_raw_body():
    import hashlib
    import hmac

    body = b'{"id":"x","event":"ping"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1700000000, body) == f"sha256={expected}"


def test_a_receiver_verifies_and_refuses_a_changed_body_a_wrong_secret_or_an_old_timestamp():
    now = int(time.time())
    body = b'{"a":1}'
    signature = sign("s3cret", now, body)
    assert verify("s3cret", str(now), body, signature)
    assert not verify("s3cret", str(now), b'{"a":2}', signature)
    assert not verify("other", str(now), body, signature)
    old = now - 3600
    assert not verify("s3cret", str(old), body, sign("s3cret", old, body))  # a replay of an old delivery


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.5.5.5",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address under test, nothing binds it
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_loopback_private_link_local_multicast_reserved_and_unspecified_addresses_are_forbidden(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http"),
        ("file:///etc/passwd", "http"),
        ("http://user:pw@example.com/", "user name"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "port"),
    ],
)
def test_only_plain_http_and_https_urls_are_accepted(url, message):
    with pytest.raises(AddressRefused, match=message):
        parse_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]:8080/x", "http://[::ffff:127.0.0.1]/", "http://10.0.0.7/"])
def test_literal_private_addresses_are_refused(url):
    with pytest.raises(AddressRefused, match="public addresses only"):
        resolve(parse_url(url), allow_private=False)


def _resolving_to(*addresses: str):
    def getaddrinfo(host, port, *args, **kwargs):
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return getaddrinfo


def test_a_host_name_resolving_to_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(transport.socket, "getaddrinfo", _resolving_to("10.0.0.5"))
    with pytest.raises(AddressRefused, match=r"hooks\.example\.com resolves to 10\.0\.0\.5, a private address"):
        resolve(parse_url("https://hooks.example.com/in"), allow_private=False)


def test_one_private_address_among_public_ones_is_enough_to_refuse(monkeypatch):
    monkeypatch.setattr(transport.socket, "getaddrinfo", _resolving_to("93.184.216.34", "127.0.0.1"))
    with pytest.raises(AddressRefused, match="loopback"):
        resolve(parse_url("https://hooks.example.com/in"), allow_private=False)


def test_the_operator_may_allow_private_addresses(monkeypatch):
    monkeypatch.setattr(transport.socket, "getaddrinfo", _resolving_to("10.0.0.5"))
    assert resolve(parse_url("https://hooks.example.com/in"), allow_private=True) == [ipaddress.ip_address("10.0.0.5")]


def test_delivery_time_check_refuses_before_connecting(monkeypatch):
    """DNS rebinding: the name now resolves to loopback, so nothing is sent."""
    monkeypatch.setattr(transport.socket, "getaddrinfo", _resolving_to("127.0.0.1"))
    connected = []
    monkeypatch.setattr(transport.socket, "create_connection", lambda *a, **k: connected.append(a))
    outcome = transport.post(
        "http://hooks.example.com/", b"{}", {}, allow_private=False, connect_timeout=1, read_timeout=1
    )
    assert outcome.status is None and "loopback" in outcome.error and not connected


def test_an_unreachable_port_is_an_error_not_an_exception():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = transport.post(
        f"http://127.0.0.1:{port}/", b"{}", {}, allow_private=True, connect_timeout=1, read_timeout=1
    )
    assert outcome.status is None and outcome.error and not outcome.ok
