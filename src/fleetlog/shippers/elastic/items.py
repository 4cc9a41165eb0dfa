"""Each action's answer, in the shape Elasticsearch gives it in a bulk response's `items`.

Clients act on the status: 2xx done; 409 for `create` a document that exists (Beats and
Logstash drop it as a duplicate, which it is); 429 retried; any other 4xx dropped or sent to
a dead-letter queue. fleetlog keeps logs immutable and stores each `_id` once: `index` with an
`_id` already stored answers 200 `noop` (nothing changed), `create` answers 409.
"""

from dataclasses import dataclass
from typing import Any

from fleetlog.shippers.elastic.ndjson import Action, Problem

SHARDS = {"total": 1, "successful": 1, "failed": 0}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one action: a result (`created`, `noop`), or an error with its reason."""

    status: int
    result: str | None = None
    error: Problem | None = None

    @property
    def stored(self) -> bool:
        """Whether the record of this action's `_id` is in fleetlog, by this request or before."""
        return self.status in (200, 201, 409)


CREATED = Outcome(201, result="created")
NOOP = Outcome(200, result="noop")


def duplicate(action: Action) -> Outcome:
    """The answer to an action whose `_id` is stored already."""
    if action.op != "create":
        return NOOP
    reason = f"[{action.id}]: version conflict, document already exists (current version [1])"
    return Outcome(409, error=Problem("version_conflict_engine_exception", reason))


def rejected(reason: str) -> Outcome:
    """Not stored now, nothing lost: the client retries the action."""
    return Outcome(429, error=Problem("es_rejected_execution_exception", reason))


def refused(problem: Problem, *, status: int = 400) -> Outcome:
    return Outcome(status, error=problem)


def immutable(action: Action) -> Outcome:
    reason = f"fleetlog keeps logs immutable: [{action.op}] is not supported, only index and create"
    return Outcome(400, error=Problem("illegal_argument_exception", reason, rule="immutable"))


def item(action: Action, doc_id: str | None, outcome: Outcome) -> dict[str, Any]:
    """`{"<op>": {"_index", "_id", "status", …}}` as Elasticsearch answers it."""
    if outcome.error is None:
        body: dict[str, Any] = {
            "_index": action.index,
            "_id": doc_id,
            "_version": 1,
            "result": outcome.result,
            "_shards": SHARDS,
            "status": outcome.status,
        }
    else:
        body = {"_index": action.index, "_id": doc_id, "status": outcome.status}
        error = {"type": outcome.error.kind, "reason": outcome.error.reason}
        if outcome.error.rule is not None:
            error["rule"] = outcome.error.rule
        body["error"] = error | {"index": action.index}
    return {action.op: body}


def bulk_answer(
    actions: list[Action], ids: list[str | None], outcomes: list[Outcome], *, took_ms: int
) -> dict[str, Any]:
    """The body of a bulk response; `errors` says whether any item has an error."""
    return {
        "took": took_ms,
        "errors": any(outcome.error is not None for outcome in outcomes),
        "items": [
            item(action, doc_id, outcome)
            for action, doc_id, outcome in zip(actions, ids, outcomes, strict=True)
        ],
    }
