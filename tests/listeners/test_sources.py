"""FLEETLOG_LISTENER_ALLOW: which senders the listeners take logs from."""

import pytest

from fleetlog.listeners.sources import Allowlist

LOOPBACK = ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("allowed", "address", "admitted"),
    [
        (LOOPBACK, "127.0.0.1", True),
        (LOOPBACK, "::1", True),
        (LOOPBACK, "::ffff:127.0.0.5", True),
        (LOOPBACK, "10.1.2.3", False),
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),
        (["fe80::/10"], "fe80::1%eth0", True),
        (["10.0.0.0/8"], "not an address", False),
        (["*"], "203.0.113.9", True),
    ],
)
def test_a_source_is_admitted_only_from_the_allowed_networks(allowed, address, admitted):
    assert Allowlist(allowed).admits(address) is admitted
