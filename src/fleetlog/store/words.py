"""Which way SQLite searches words: through its FTS5 index, or walking logs newest first.

FTS5 answers every log holding the words at once, and SQLite must gather and sort all of them
before the first page: fast for a rare word, seconds for a common one. Walking the logs in
their order and checking each message's words stops at the page's end: fast for a common
word, a walk through every log for a rare one. The FTS5 vocabulary (`logs_fts_vocab`) says
how many logs hold each word, so the count bounds the answer before choosing. PostgreSQL's
planner makes the same choice from its own statistics.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetlog.search.plan import And, Node, Or, Phrase, Prefix, Word

# Walk when more than this share of the logs may hold the words: the walk then checks about
# `rows / share` logs a page, while the index gathers `share * logs` of them.
WALK_SHARE = 0.005
# A prefix's words are counted up to this many; past it, the prefix counts as common.
MAX_PREFIX_TERMS = 1000
DOCS = text("SELECT doc FROM logs_fts_vocab WHERE term = :term")
PREFIX_DOCS = text(
    "SELECT sum(doc) FROM (SELECT doc FROM logs_fts_vocab"
    " WHERE term >= :start AND term < :end LIMIT :terms)"
)
LOGS = text("SELECT max(rowid) FROM logs")


async def walk_preferred(conn: AsyncConnection, plan: Node) -> bool:
    """Whether walking the logs finds `plan`'s words sooner than the word index does."""
    bound = await most_matches(conn, plan)
    if bound is None:
        return True
    logs = (await conn.execute(LOGS)).scalar() or 0
    return bound > logs * WALK_SHARE


async def most_matches(conn: AsyncConnection, node: Node) -> int | None:
    """At most how many logs `node` can match by its words; None when its words do not
    bound it (no words, or only under NOT)."""
    match node:
        case Word(word):
            return await docs(conn, word)
        case Phrase(words):
            return min([await docs(conn, word) for word in words])
        case Prefix(prefix):
            terms = {"start": prefix, "end": prefix + "\U0010ffff", "terms": MAX_PREFIX_TERMS}
            return int((await conn.execute(PREFIX_DOCS, terms)).scalar() or 0)
        case And(nodes):
            known = [
                bound for each in nodes if (bound := await most_matches(conn, each)) is not None
            ]
            return min(known) if known else None
        case Or(nodes):
            each_bound = [await most_matches(conn, each) for each in nodes]
            return None if None in each_bound else sum(bound or 0 for bound in each_bound)
    return None


async def docs(conn: AsyncConnection, word: str) -> int:
    return int((await conn.execute(DOCS, {"term": word})).scalar() or 0)
