"""``client_address``: X-Forwarded-For is read only as deep as the proxies we trust."""

import pytest
from django.test import RequestFactory

from saaskit.client_address import client_address


def request(remote="10.0.0.2", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(("trusted", "forwarded", "expected"), [
    (0, None, "10.0.0.2"),
    (0, "203.0.113.7", "10.0.0.2"),  # no trusted proxy: the header is the client's word, ignored
    (1, "203.0.113.7", "203.0.113.7"),
    (1, "192.0.2.1, 203.0.113.7", "203.0.113.7"),  # the spoofed leftmost entry never counts
    (1, "192.0.2.1,203.0.113.7 , ", "203.0.113.7"),
    (2, "192.0.2.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
    (2, "203.0.113.7", "10.0.0.2"),  # fewer entries than proxies: it did not come through them all
    (1, None, "10.0.0.2"),
    (1, "not-an-address", "10.0.0.2"),
    (1, "2001:db8::1", "2001:db8::1"),
])
def test_client_address(settings, trusted, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = trusted

    assert client_address(request(forwarded=forwarded)) == expected
