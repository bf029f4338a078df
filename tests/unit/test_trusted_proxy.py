"""The client's address behind trusted proxies (registry.project.middleware.client_address)."""

from __future__ import annotations

import pytest

from registry.project.middleware import client_address

PROXIES = ("10.0.0.5", "10.1.0.0/16")


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "expected"),
    [
        ("203.0.113.9", "", "203.0.113.9"),  # no proxy
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # not from a proxy: header ignored
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),  # through the proxy
        ("10.0.0.5", "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # client-written entry left
        ("10.0.0.5", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # two trusted proxies in a row
        ("10.0.0.5", "", "10.0.0.5"),  # the proxy's own request
        ("10.0.0.5", "not-an-address", "10.0.0.5"),  # garbage is never believed
        ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.6", "198.51.100.7", "10.0.0.6"),  # a neighbour of the proxy is not the proxy
    ],
)
def test_client_address(remote_addr, forwarded_for, expected):
    assert client_address(remote_addr, forwarded_for, PROXIES) == expected
