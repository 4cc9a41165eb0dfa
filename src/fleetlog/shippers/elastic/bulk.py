"""A bulk request written once: `_id` as an idempotency key, so a retried bulk stores nothing
twice.

The `_id`s (with their index) are claimed before anything is queued. An action whose key was
stored before answers as a duplicate, one whose key another request holds answers 429 (retried
later, when that request has stored it or given it up), and the rest go through `Ingest.ship`
together. The keys of the records made durable are then confirmed, those of the records
refused released. Within one request the first action of a key is the one considered; a later
one with the same key answers as a retry of it.
"""

import logging
from collections.abc import Iterable

from fleetlog.auth.principals import Principal
from fleetlog.errors import Unavailable
from fleetlog.idempotency import Claim, Registry, Seen
from fleetlog.ingest import Ingest
from fleetlog.metrics import SHIPPED_RECORDS
from fleetlog.shippers.elastic import items
from fleetlog.shippers.elastic.documents import shipped
from fleetlog.shippers.elastic.items import Outcome
from fleetlog.shippers.elastic.ndjson import Action, Problem
from fleetlog.shippers.intake import Refusal, Shipped

log = logging.getLogger(__name__)

PROTOCOL = "elastic"
IN_FLIGHT = "a request with the same _id is being stored; retry"


def key_of(action: Action) -> str | None:
    """The idempotency key of an action: its index and `_id` (index names hold no `/`)."""
    return None if action.id is None else f"{PROTOCOL}/{action.index}/{action.id}"


class BulkWrite:
    """One bulk request's actions, written and answered; `ids` are the `_id`s to answer with
    (fleetlog's message id for an action that gave none)."""

    def __init__(
        self,
        actions: list[Action],
        *,
        ingest: Ingest,
        registry: Registry,
        principal: Principal | None,
    ) -> None:
        self.actions = actions
        self.ingest = ingest
        self.registry = registry
        self.principal = principal
        self.ids = [action.id for action in actions]
        self.outcomes: dict[int, Outcome] = {}
        # By position: the records to write (the first action of each key, and those without
        # one), and each later action of a key with the position of the first.
        self.candidates: dict[int, Shipped] = {}
        self.leaders: dict[str, int] = {}
        self.followers: dict[int, int] = {}

    async def write(self) -> list[Outcome]:
        self.map_sources()
        try:
            claim = await self.registry.claim(list(self.leaders))
        except Unavailable as exc:
            self.reject(self.candidates, exc.message)
        else:
            await self.ship(self.sort(claim), claim)
        self.answer_followers()
        return [self.outcomes[position] for position in range(len(self.actions))]

    def map_sources(self) -> None:
        """Records of the actions fleetlog may store; every other action gets its answer."""
        refused = 0
        for position, action in enumerate(self.actions):
            record = self.record_of(action)
            if isinstance(record, Outcome):
                self.outcomes[position] = record
                refused += 1
                continue
            key = key_of(action)
            if key is not None and key in self.leaders:
                self.followers[position] = self.leaders[key]
                continue
            if key is not None:
                self.leaders[key] = position
            self.candidates[position] = record
        SHIPPED_RECORDS.labels(PROTOCOL, "refused").inc(refused)

    def record_of(self, action: Action) -> Shipped | Outcome:
        if action.op not in ("index", "create"):
            return items.immutable(action)
        if action.problem is not None:
            return items.refused(action.problem)
        record = shipped(action)
        return items.refused(record) if isinstance(record, Problem) else record

    def sort(self, claim: Claim) -> list[int]:
        """The positions to ship: keys claimed now, and actions without an `_id`."""
        to_ship, duplicates = [], 0
        for position in self.candidates:
            key = key_of(self.actions[position])
            seen = Seen.NEW if key is None else claim.seen[key]
            if seen is Seen.NEW:
                to_ship.append(position)
            elif seen is Seen.STORED:
                self.outcomes[position] = items.duplicate(self.actions[position])
                duplicates += 1
            else:
                self.outcomes[position] = items.rejected(IN_FLIGHT)
        SHIPPED_RECORDS.labels(PROTOCOL, "duplicate").inc(duplicates)
        return to_ship

    async def ship(self, to_ship: list[int], claim: Claim) -> None:
        if not to_ship:
            return
        records = [self.candidates[position] for position in to_ship]
        try:
            shipment = await self.ingest.ship(records, protocol=PROTOCOL, principal=self.principal)
        except Unavailable as exc:
            await self.settle(claim, release=self.keys_at(to_ship))
            self.reject(to_ship, exc.message)
            return
        for refusal in shipment.refusals:
            self.outcomes[to_ship[refusal.index]] = refused_by_rule(refusal)
        stored = [to_ship[index] for index in shipment.indexes]
        for position, message_id in zip(stored, shipment.message_ids, strict=True):
            self.outcomes[position] = items.CREATED
            if self.ids[position] is None:
                self.ids[position] = message_id
        refused = [to_ship[refusal.index] for refusal in shipment.refusals]
        await self.settle(claim, confirm=self.keys_at(stored), release=self.keys_at(refused))

    async def settle(
        self, claim: Claim, *, confirm: list[str] | None = None, release: list[str] | None = None
    ) -> None:
        """Confirm and release keys; if the registry cannot now, the claims expire on their own
        (the one window of docs/protocols.md for confirmed keys; none for released ones)."""
        try:
            if confirm:
                await self.registry.confirm(claim, confirm)
            if release:
                await self.registry.release(claim, release)
        except Unavailable:
            log.warning("idempotency keys left to expire: %d to confirm", len(confirm or ()))

    def keys_at(self, positions: list[int]) -> list[str]:
        keys = (key_of(self.actions[position]) for position in positions)
        return [key for key in keys if key is not None]

    def reject(self, positions: Iterable[int], reason: str) -> None:
        for position in positions:
            self.outcomes[position] = items.rejected(reason)

    def answer_followers(self) -> None:
        for position, leader in self.followers.items():
            outcome = self.outcomes[leader]
            action = self.actions[position]
            self.outcomes[position] = items.duplicate(action) if outcome.stored else outcome


def refused_by_rule(refusal: Refusal) -> Outcome:
    kind = "security_exception" if refusal.status == 403 else "illegal_argument_exception"
    return items.refused(Problem(kind, refusal.message, rule=refusal.rule), status=refusal.status)
