"""A plan as a WHERE clause, one compiler per store, with the meaning `matcher.py` gives it.

Words, phrases and prefixes go to each store's word index, whose words are those of
`plan.words`: on PostgreSQL the `fleetlog_words(message)` tsvector (migration 0006) queried
with one tsquery per run of text nodes; on SQLite the `logs_fts` FTS5 table (`unicode61`,
diacritics kept) queried with MATCH. FTS5 has no unary NOT, so a negated text node there is a
NOT IN; when the words are common, SQLite checks them message by message instead
(`fleetlog_text`, the Python matcher's words; store/words.py says when). Regular expressions
are PostgreSQL's `~` and, on SQLite, Python's `re` through the REGEXP function the store
registers (`store/engine.py`). `log_data` values are compared by JSON type, so
`attr.code:404` matches the number 404 and the string "404", never "0404".
"""

from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Numeric,
    String,
    Table,
    and_,
    case,
    cast,
    column,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSQUERY

from fleetlog.records import LogLevel
from fleetlog.search.matcher import LogFields, Predicate, predicate
from fleetlog.search.plan import (
    TEXT,
    And,
    Attr,
    Device,
    Everything,
    Levels,
    Node,
    Not,
    Op,
    Or,
    Phrase,
    Prefix,
    Regex,
    Word,
)

FTS = table("logs_fts", column("rowid"))
COMPARISONS = {Op.GT: "__gt__", Op.GE: "__ge__", Op.LT: "__lt__", Op.LE: "__le__"}


def where(plan: Node, *, dialect: str, table: Table, walk: bool = False) -> ColumnElement[bool]:
    """`plan` over `table`'s columns: `device_id`, `log_level`, and on `logs` `message`,
    `log_data` and `id`. With `walk` (SQLite), words are checked message by message
    (`fleetlog_text`) instead of looked up in the word index: see store/words.py."""
    return Compiler(dialect, table, walk=walk).compile(plan)


def text_key(node: Node) -> str:
    """A text node (NOTs included) as the JSON `fleetlog_text` reads back."""
    match node:
        case Word(word):
            return orjson.dumps(["w", word]).decode()
        case Prefix(prefix):
            return orjson.dumps(["p", prefix]).decode()
        case Phrase(words):
            return orjson.dumps(["f", words]).decode()
        case Not(inner):
            return f'["not",{text_key(inner)}]'
        case And(nodes) | Or(nodes):
            kind = "and" if isinstance(node, And) else "or"
            return f'["{kind}",[' + ",".join(text_key(each) for each in nodes) + "]]"
    raise TypeError(f"not a text node: {node!r}")


def text_node(value: Any) -> Node:
    kind, argument = value
    if kind == "w":
        return Word(argument)
    if kind == "p":
        return Prefix(argument)
    if kind == "f":
        return Phrase(tuple(argument))
    if kind == "not":
        return Not(text_node(argument))
    nodes = tuple(text_node(each) for each in argument)
    return And(nodes) if kind == "and" else Or(nodes)


@lru_cache(maxsize=256)
def text_predicate_of(key: str) -> Predicate:
    return predicate(text_node(orjson.loads(key)))


def text_matches(key: str, message: str | None) -> bool:
    """SQLite's `fleetlog_text(key, message)`: whether the message holds the text node's
    words, as the Python matcher reads them."""
    if message is None:
        return False
    fields = LogFields(device_id="", log_level="", message=message, log_data={})
    return text_predicate_of(key)(fields)


def is_text(node: Node, *, negation: bool) -> bool:
    """Whether `node` is words, phrases and prefixes only (and NOTs of them, if `negation`)."""
    if isinstance(node, And | Or):
        return all(is_text(each, negation=negation) for each in node.nodes)
    if isinstance(node, Not):
        return negation and is_text(node.node, negation=negation)
    return isinstance(node, TEXT)


def tsquery(node: Node) -> str:
    """A text node as PostgreSQL tsquery text; words hold letters and digits only."""
    match node:
        case Word(word):
            return f"'{word}'"
        case Prefix(prefix):
            return f"'{prefix}':*"
        case Phrase(words):
            return "(" + " <-> ".join(f"'{word}'" for word in words) + ")"
        case Not(inner):
            return f"!{tsquery(inner)}"
        case And(nodes):
            return "(" + " & ".join(tsquery(each) for each in nodes) + ")"
        case Or(nodes):
            return "(" + " | ".join(tsquery(each) for each in nodes) + ")"
    raise TypeError(f"not a text node: {node!r}")


def fts_query(node: Node) -> str:
    """A text node without NOT as an FTS5 query."""
    match node:
        case Word(word):
            return f'"{word}"'
        case Prefix(prefix):
            return f'"{prefix}" *'
        case Phrase(words):
            return '"' + " ".join(words) + '"'
        case And(nodes):
            return "(" + " AND ".join(fts_query(each) for each in nodes) + ")"
        case Or(nodes):
            return "(" + " OR ".join(fts_query(each) for each in nodes) + ")"
    raise TypeError(f"not a text node: {node!r}")


def glob_escape(value: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in value)


def json_path(path: tuple[str, ...]) -> str:
    """SQLite's JSON path of `path`; keys hold letters, digits, `_` and `-` only."""
    return "$" + "".join(f'."{key}"' for key in path)


class Compiler:
    def __init__(self, dialect: str, table: Table, *, walk: bool = False) -> None:
        self.postgres = dialect == "postgresql"
        self.table = table
        self.walk = walk and not self.postgres
        # Text nodes joined into one look-up may hold NOTs where the look-up takes them.
        self.joins_not = self.postgres or self.walk

    def compile(self, node: Node) -> ColumnElement[bool]:
        match node:
            case Everything():
                return true()
            case Word() | Phrase() | Prefix():
                return self.words(node)
            case Regex(pattern):
                return self.table.c.message.bool_op("~" if self.postgres else "REGEXP")(pattern)
            case Device():
                return self.device(node)
            case Levels(levels):
                if len(levels) == len(LogLevel):
                    return true()
                return self.table.c.log_level.in_(sorted(levels))
            case Attr():
                return self.attr(node)
            case Not(inner):
                return self.negation(inner)
            case And(nodes) | Or(nodes):
                return self.junction(node, nodes)
        raise TypeError(f"not a plan node: {node!r}")

    def words(self, node: Node) -> ColumnElement[bool]:
        """A text node (NOTs included on PostgreSQL) as one look-up in the word index."""
        if self.postgres:
            words = func.fleetlog_words(self.table.c.message)
            return words.bool_op("@@")(cast(literal(tsquery(node)), TSQUERY))
        if self.walk:
            return func.fleetlog_text(text_key(node), self.table.c.message, type_=Boolean)
        match = literal_column("logs_fts").bool_op("MATCH")(fts_query(node))
        return self.table.c.id.in_(select(FTS.c.rowid).where(match))

    def negation(self, inner: Node) -> ColumnElement[bool]:
        if self.joins_not and is_text(inner, negation=True):
            return self.words(Not(inner))
        return not_(self.compile(inner))

    def junction(self, node: And | Or, nodes: tuple[Node, ...]) -> ColumnElement[bool]:
        """AND/OR, with the text nodes among `nodes` joined into one look-up."""
        text = [each for each in nodes if is_text(each, negation=self.joins_not)]
        rest = [self.compile(each) for each in nodes if not is_text(each, negation=self.joins_not)]
        if len(text) == 1:
            rest.append(self.words(text[0]))
        elif text:
            rest.append(self.words(type(node)(tuple(text))))
        return and_(*rest) if isinstance(node, And) else or_(*rest)

    def device(self, node: Device) -> ColumnElement[bool]:
        device_id = self.table.c.device_id
        if not node.prefix:
            return device_id == node.value
        if not node.value:
            return true()
        if self.postgres:
            return device_id.startswith(node.value, autoescape=True)
        # GLOB: case-sensitive, and SQLite searches the device index with it.
        return device_id.bool_op("GLOB")(glob_escape(node.value) + "*")

    def attr(self, node: Attr) -> ColumnElement[bool]:
        """True or false, never NULL where the key is missing: NOT of it must be true there."""
        matches = self.postgres_attr(node) if self.postgres else self.sqlite_attr(node)
        return func.coalesce(matches, false(), type_=Boolean)

    def sqlite_attr(self, node: Attr) -> ColumnElement[bool]:
        data, path = self.table.c.log_data, json_path(node.path)
        kind, value = func.json_type(data, path), func.json_extract(data, path)
        number = node.number
        if node.op is not Op.EQ:
            compare = getattr(value, COMPARISONS[node.op])(number)
            return and_(kind.in_(("integer", "real")), compare)
        matches = [and_(kind == "text", value == node.value)]
        if number is not None:
            matches.append(and_(kind.in_(("integer", "real")), value == number))
        if (spelled := node.value.lower()) in ("true", "false", "null"):
            matches.append(kind == spelled)
        return or_(*matches)

    def postgres_attr(self, node: Attr) -> ColumnElement[bool]:
        path = cast(literal(list(node.path)), ARRAY(String))
        value = self.table.c.log_data.op("#>")(path)
        number = node.number
        if node.op is not Op.EQ:
            text = self.table.c.log_data.op("#>>")(path)
            compare = getattr(cast(text, Numeric), COMPARISONS[node.op])(number)
            return case((func.jsonb_typeof(value) == "number", compare), else_=false())
        spelled: list[Any] = [node.value]
        if number is not None:
            spelled.append(int(number) if number.is_integer() else number)
        if (word := node.value.lower()) in ("true", "false", "null"):
            spelled.append({"true": True, "false": False, "null": None}[word])
        candidates = [cast(literal(orjson.dumps(each).decode()), JSONB) for each in spelled]
        return value.in_(candidates)
