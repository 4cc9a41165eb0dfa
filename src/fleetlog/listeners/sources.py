"""The source networks a listener takes logs from: syslog and GELF over UDP carry no
credential, so where they come from is what admits them (`FLEETLOG_LISTENER_ALLOW`)."""

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Allowlist:
    """Admits an address that falls in one of the networks (`*`: any address)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self.anyone = "*" in allowed
        self.networks: list[Network] = [
            ipaddress.ip_network(item) for item in allowed if item != "*"
        ]

    def admits(self, address: str) -> bool:
        if self.anyone:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        # A socket bound to "::" sees IPv4 senders as ::ffff:a.b.c.d.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
