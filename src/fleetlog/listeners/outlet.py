"""Where a listener's records go: `Ingest.ship` in groups, each line's outcome counted.

Listeners answer nobody, so the counters are the only account of what became of a line:
`fleetlog_listener_lines_total{listener, outcome}` with accepted, refused (a rule of
fleetlog's), invalid (not the protocol), dropped (fleetlog could not take it) and
unlisted_source (see `sources`).
"""

import logging
from collections.abc import Sequence

from fleetlog.ingest import Ingest
from fleetlog.metrics import LISTENER_LINES
from fleetlog.shippers.intake import Shipped

log = logging.getLogger(__name__)

# Records per `ship` call at most: one queue entry, one commit, a bounded retry.
MAX_GROUP = 1000


class Outlet:
    """Ships one listener's records under one protocol, and counts every line's outcome.

    `group` bounds the records of one call: it must fit the backlog, or a full group would be
    refused for ever.
    """

    def __init__(self, ingest: Ingest, *, protocol: str, listener: str, group: int) -> None:
        self.ingest = ingest
        self.protocol = protocol
        self.listener = listener
        self.group = max(1, min(MAX_GROUP, group))
        self.outcomes = {
            outcome: LISTENER_LINES.labels(listener, outcome)
            for outcome in ("accepted", "refused", "invalid", "dropped", "unlisted_source")
        }

    async def ship(self, shipped: Sequence[Shipped]) -> None:
        """Queue the records durably; raises `Unavailable` (and counts nothing) when the
        backlog or the store cannot take them now."""
        shipment = await self.ingest.ship(shipped, protocol=self.protocol, principal=None)
        self.count("accepted", len(shipment.message_ids))
        self.count("refused", len(shipment.refusals))
        for refusal in shipment.refusals:
            log.debug("%s refused a record: %s", self.listener, refusal.message)

    def groups(self, shipped: list[Shipped]) -> list[list[Shipped]]:
        return [shipped[at : at + self.group] for at in range(0, len(shipped), self.group)]

    def count(self, outcome: str, n: int = 1) -> None:
        if n:
            self.outcomes[outcome].inc(n)

    def invalid(self, reason: str) -> None:
        self.count("invalid")
        log.debug("%s read an invalid line: %s", self.listener, reason)
