"""A plan as a Python predicate over one log: what tail filters with, and what the stores'
answers are checked against in the tests."""

import re
from collections.abc import Callable, Mapping
from typing import Any

from fleetlog.search.plan import (
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
    words,
)

Predicate = Callable[["LogFields"], bool]


class LogFields:
    """The parts of one log a plan looks at; its words are found once, when first asked."""

    __slots__ = ("_words", "device_id", "log_data", "log_level", "message")

    def __init__(
        self, *, device_id: str, log_level: str, message: str, log_data: Mapping[str, Any]
    ) -> None:
        self.device_id = device_id
        self.log_level = log_level
        self.message = message
        self.log_data = log_data
        self._words: list[str] | None = None

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = words(self.message)
        return self._words


def predicate(node: Node) -> Predicate:
    """`node` as a function of a log: True when the log matches."""
    match node:
        case Everything():
            return lambda log: True
        case Word() | Prefix() | Phrase() | Regex():
            return text_predicate(node)
        case Device(value, prefix):
            if prefix:
                return lambda log: log.device_id.startswith(value)
            return lambda log: log.device_id == value
        case Levels(levels):
            return lambda log: log.log_level in levels
        case Attr():
            return attr_predicate(node)
        case Not(inner):
            negated = predicate(inner)
            return lambda log: not negated(log)
        case And(nodes):
            every = [predicate(each) for each in nodes]
            return lambda log: all(each(log) for each in every)
        case Or(nodes):
            some = [predicate(each) for each in nodes]
            return lambda log: any(each(log) for each in some)
    raise TypeError(f"not a plan node: {node!r}")


def text_predicate(node: Word | Prefix | Phrase | Regex) -> Predicate:
    match node:
        case Word(word):
            return lambda log: word in log.words
        case Prefix(prefix):
            return lambda log: any(each.startswith(prefix) for each in log.words)
        case Phrase(phrase):
            return lambda log: holds_phrase(log.words, phrase)
        case Regex(pattern):
            compiled = re.compile(pattern)
            return lambda log: compiled.search(log.message) is not None


def holds_phrase(found: list[str], phrase: tuple[str, ...]) -> bool:
    width = len(phrase)
    return any(tuple(found[start : start + width]) == phrase for start in range(len(found)))


MISSING = object()


def value_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def equals(value: Any, text: str, number: float | None) -> bool:
    """`attr.key:text`: a string equal to it, or the number, boolean or null it spells."""
    if isinstance(value, str):
        return value == text
    if isinstance(value, bool):
        return text.lower() == ("true" if value else "false")
    if is_number(value):
        return number is not None and value == number
    return value is None and text.lower() == "null"


COMPARE: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: lambda value, bound: value > bound,
    Op.GE: lambda value, bound: value >= bound,
    Op.LT: lambda value, bound: value < bound,
    Op.LE: lambda value, bound: value <= bound,
}


def attr_predicate(node: Attr) -> Predicate:
    path, text, number = node.path, node.value, node.number
    if node.op is Op.EQ:
        return lambda log: equals(value_at(log.log_data, path), text, number)
    compare, bound = COMPARE[node.op], number if number is not None else 0.0

    def compares(log: LogFields) -> bool:
        value = value_at(log.log_data, path)
        return is_number(value) and compare(value, bound)

    return compares
