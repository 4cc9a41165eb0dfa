"""Which way SQLite searches words: through its FTS5 index, or walking logs newest first.

FTS5 answers every log holding the words at once, and SQLite must gather and sort all of them
before the first page: fast for a rare word, seconds for a common one. Walking the logs in
their order and checking each message's words stops at the page's end: fast for a common
word, a walk through every log for a rare one. So FTS5 is first asked how many logs hold the
words the plan requires, counting no further than the share past which walking is faster:
that count costs at most as much as the page itself. PostgreSQL's planner makes the same
choice from its own statistics.
"""

import math

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.search.plan import TEXT, And, Node, Or
from fleetlog.search.sql import fts_query, is_text

# Walk when more than this share of the logs hold the words: the walk then checks about
# `rows / share` logs a page, while the index gathers `share * logs` of them.
WALK_SHARE = 0.005
LOGS = text("SELECT max(rowid) FROM logs")
MATCHES = text(
    "SELECT count(*) FROM (SELECT 1 FROM logs_fts WHERE logs_fts MATCH :words LIMIT :most)"
)


async def walk_preferred(conn: AsyncConnection, plan: Node) -> bool:
    """Whether walking the logs finds `plan`'s words sooner than the word index does."""
    words = required_words(plan)
    if words is None:
        return True
    logs = (await conn.execute(LOGS)).scalar() or 0
    most = math.floor(logs * WALK_SHARE)
    found = (await conn.execute(MATCHES, {"words": fts_query(words), "most": most + 1})).scalar()
    return (found or 0) > most


def required_words(plan: Node) -> Node | None:
    """The words, phrases and prefixes every log `plan` finds must hold (as one text node
    without NOT), or None when nothing of the kind is required."""
    if isinstance(plan, TEXT) or (isinstance(plan, Or) and is_text(plan, negation=False)):
        return plan
    if isinstance(plan, And):
        required = [each for each in plan.nodes if is_text(each, negation=False)]
        if required:
            return required[0] if len(required) == 1 else And(tuple(required))
    return None
