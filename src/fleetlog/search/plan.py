"""The plan of a query: a small tree of immutable nodes, the same for every store.

Words are what `words()` finds in a message: maximal runs of letters and digits, lowercased.
The stores index the same words (SQLite FTS5 `unicode61`, PostgreSQL `fleetlog_words`), so a
word, a phrase and a prefix mean the same on both, and in the Python matcher.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from fleetlog.records import LogLevel

WORD = re.compile(r"[^\W_]+")
LEVEL_ORDER = tuple(LogLevel)


def words(text: str) -> list[str]:
    """The words of `text`, lowercased, in order."""
    return WORD.findall(text.lower())


class Op(StrEnum):
    EQ = ":"
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    REGEX = "~"


@dataclass(frozen=True, slots=True)
class Everything:
    """The empty query: every log."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """Two or more words, adjacent and in this order."""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prefix:
    """A word that starts with `prefix`."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Regex:
    """A regular expression found anywhere in the message (case-sensitive)."""

    pattern: str


@dataclass(frozen=True, slots=True)
class Device:
    """The device id, exactly, or (`prefix`) starting with `value`."""

    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Levels:
    """The level is one of these (`level:error` and `level>=warning` alike)."""

    levels: frozenset[LogLevel]


@dataclass(frozen=True, slots=True)
class Attr:
    """A `log_data` value at `path` compared with `value`: `:` matches a string equal to it,
    a number, boolean or null it spells; the others compare numbers."""

    path: tuple[str, ...]
    op: Op
    value: str

    @property
    def number(self) -> float | None:
        return as_number(self.value)


@dataclass(frozen=True, slots=True)
class Not:
    node: "Node"


@dataclass(frozen=True, slots=True)
class And:
    nodes: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Or:
    nodes: tuple["Node", ...]


Node = Everything | Word | Phrase | Prefix | Regex | Device | Levels | Attr | Not | And | Or
TEXT = (Word, Phrase, Prefix)
NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def as_number(value: str) -> float | None:
    """`value` as a finite number, if it spells one."""
    if NUMBER.fullmatch(value) is None:
        return None
    number = float(value)
    return number if abs(number) != float("inf") else None


def levels_from(op: Op, level: LogLevel) -> frozenset[LogLevel]:
    """The levels `level<op><level>` admits, in the order DEBUG < … < CRITICAL."""
    rank = LEVEL_ORDER.index(level)
    ranks = {
        Op.EQ: range(rank, rank + 1),
        Op.GT: range(rank + 1, len(LEVEL_ORDER)),
        Op.GE: range(rank, len(LEVEL_ORDER)),
        Op.LT: range(rank),
        Op.LE: range(rank + 1),
    }[op]
    return frozenset(LEVEL_ORDER[index] for index in ranks)


def uses_only(node: Node, kinds: tuple[type, ...]) -> bool:
    """Whether every leaf of `node` is one of `kinds` (e.g. Device and Levels: the rollups
    answer it)."""
    if isinstance(node, And | Or):
        return all(uses_only(each, kinds) for each in node.nodes)
    if isinstance(node, Not):
        return uses_only(node.node, kinds)
    return isinstance(node, (Everything, *kinds))


def holds(node: Node, kinds: tuple[type, ...]) -> bool:
    """Whether some leaf of `node` is one of `kinds` (e.g. TEXT: it searches words)."""
    if isinstance(node, And | Or):
        return any(holds(each, kinds) for each in node.nodes)
    if isinstance(node, Not):
        return holds(node.node, kinds)
    return isinstance(node, kinds)


def conjoin(*nodes: Node) -> Node:
    """All of `nodes`; Everything drops out."""
    kept = tuple(node for node in nodes if not isinstance(node, Everything))
    if not kept:
        return Everything()
    return kept[0] if len(kept) == 1 else And(kept)
