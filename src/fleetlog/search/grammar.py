"""The query language: a lark grammar, and its parse into a plan.

    pump valve            both words (AND binds tighter than OR)
    "valve stuck"         a phrase          press*      a word prefix
    -word, NOT word       negation          a OR b, ( … )
    device:cam-7          device:cam-*      level:error     level>=warning
    attr.site:north       attr.temp_c>30    attr.ok:true    message~"pump \\d+ stuck"

A term that holds other characters than letters and digits (`cam-7`) is the phrase of its
words. Inside quotes, `\\"` is a quote; every other backslash stays as written.
"""

import re
from typing import Any, NoReturn

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from fleetlog.errors import InvalidParameter
from fleetlog.records import LogLevel
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
    as_number,
    levels_from,
    words,
)

MAX_QUERY = 4096
MAX_DEPTH = 32
GRAMMAR = r"""
?start: expr?
?expr: and_expr (OR and_expr)*  -> any_of
?and_expr: unary (AND? unary)*  -> all_of
?unary: MINUS unary  -> negate
      | NOT unary  -> negate
      | "(" expr ")"
      | FIELD value  -> field
      | PHRASE  -> phrase
      | TERM  -> term
?value: PHRASE | VALUE

OR.3: /OR(?=[\s()]|$)/
AND.3: /AND(?=[\s()]|$)/
NOT.3: /NOT(?=[\s(])/
MINUS: "-"
FIELD.2: /[A-Za-z_][\w.\-]*(>=|<=|:|>|<|~)/
PHRASE: /"([^"\\]|\\.)*"/
TERM: /[^\s()"\-][^\s()"]*/
VALUE: /[^\s()"]+/
%ignore /\s+/
"""
FIELD_FORM = re.compile(r"(.*?)(>=|<=|:|>|<|~)\Z")
LEVEL_NAMES = {level.lower(): level for level in LogLevel}
EXPECTED_NAMES = {
    "TERM": "a word",
    "PHRASE": "a quoted phrase",
    "VALUE": "a value",
    "FIELD": "a field",
    "LPAR": "(",
    "RPAR": ")",
    "MINUS": "-",
    "NOT": "NOT",
    "OR": "OR",
    "AND": "AND",
    "$END": "the end",
}

_parser = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


class InvalidQuery(InvalidParameter):
    """`q` cannot be searched: its detail names the position and what was wrong there."""


def invalid(message: str, *, rule: str, position: int | None = None, **extra: Any) -> NoReturn:
    problem: dict[str, Any] = {"field": "q", "rule": rule, "message": message, **extra}
    if position is not None:
        problem["position"] = position
    where = "" if position is None else f" at position {position}"
    raise InvalidQuery(f"the query cannot be searched{where}: {message}", detail=[problem])


def unquote(phrase: str) -> str:
    return phrase[1:-1].replace('\\"', '"')


def text_node(text: str, position: int) -> Node:
    """A word, a prefix (`press*`) or the phrase of a term's words."""
    if text.endswith("*") and len(found := words(text[:-1])) == 1 and found[0] == text[:-1].lower():
        return Prefix(found[0])
    found = words(text)
    if not found:
        invalid(f"{text[:64]!r} holds no letters or digits", rule="no_words", position=position)
    return Word(found[0]) if len(found) == 1 else Phrase(tuple(found))


class ToPlan(Transformer[Token, Node]):
    @v_args(inline=True)
    def term(self, token: Token) -> Node:
        return text_node(str(token), position_of(token))

    @v_args(inline=True)
    def phrase(self, token: Token) -> Node:
        return text_node(unquote(str(token)), position_of(token))

    def negate(self, children: list[Any]) -> Node:
        node: Node = children[-1]
        return node.node if isinstance(node, Not) else Not(node)

    def all_of(self, children: list[Any]) -> Node:
        nodes = tuple(child for child in children if not isinstance(child, Token))
        return nodes[0] if len(nodes) == 1 else And(nodes)

    def any_of(self, children: list[Any]) -> Node:
        nodes = tuple(child for child in children if not isinstance(child, Token))
        return nodes[0] if len(nodes) == 1 else Or(nodes)

    @v_args(inline=True)
    def field(self, field: Token, value: Token) -> Node:
        form = FIELD_FORM.fullmatch(str(field))
        assert form is not None  # the FIELD terminal ends with an operator
        name, op = form[1], Op(form[2])
        text = unquote(str(value)) if value.type == "PHRASE" else str(value)
        return field_node(name, op, text, position=position_of(field))


def position_of(token: Token) -> int:
    return (token.start_pos or 0) + 1


def field_node(name: str, op: Op, value: str, *, position: int) -> Node:
    lowered = name.lower()
    if lowered == "device":
        check_op(name, op, (Op.EQ,), position)
        if value.endswith("*"):
            return Device(value[:-1], prefix=True)
        return Device(value)
    if lowered == "level":
        check_op(name, op, (Op.EQ, Op.GT, Op.GE, Op.LT, Op.LE), position)
        level = LEVEL_NAMES.get(value.lower())
        if level is None:
            message = f"unknown level {value[:32]!r}: one of {', '.join(LEVEL_NAMES)}"
            invalid(message, rule="level", position=position)
        return Levels(levels_from(op, level))
    if lowered == "message":
        check_op(name, op, (Op.EQ, Op.REGEX), position)
        return regex_node(value, position) if op is Op.REGEX else text_node(value, position)
    if lowered.startswith("attr.") and all(name.split(".")[1:]):
        return attr_node(tuple(name.split(".")[1:]), op, value, position)
    invalid(
        f"unknown field {name[:64]!r}: device, level, message or attr.<key>",
        rule="unknown_field",
        position=position,
    )


def check_op(name: str, op: Op, allowed: tuple[Op, ...], position: int) -> None:
    if op not in allowed:
        spelled = " ".join(each.value for each in allowed)
        invalid(f"{name} takes {spelled}, not {op.value}", rule="operator", position=position)


def regex_node(pattern: str, position: int) -> Node:
    try:
        re.compile(pattern)
    except re.error as exc:
        invalid(f"not a regular expression: {exc}", rule="regex", position=position)
    return Regex(pattern)


def attr_node(path: tuple[str, ...], op: Op, value: str, position: int) -> Node:
    if op is Op.REGEX:
        invalid("attr.<key> takes : > >= < <=, not ~", rule="operator", position=position)
    if op is not Op.EQ and as_number(value) is None:
        message = f"{op.value} compares numbers, not {value[:32]!r}"
        invalid(message, rule="number", position=position)
    return Attr(path, op, value)


def parse(q: str | None) -> Node:
    """The plan of `q`; Everything for an empty or absent one. A 400 naming the position and
    what was expected when `q` is not in the language."""
    if q is None or not q.strip():
        return Everything()
    if len(q) > MAX_QUERY:
        invalid(f"longer than {MAX_QUERY} characters", rule="max_length")
    try:
        tree = _parser.parse(q)
        plan = ToPlan().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, InvalidQuery):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        syntax_error(q, exc)
    if depth(plan) > MAX_DEPTH:
        invalid(f"nested deeper than {MAX_DEPTH}", rule="max_depth")
    return plan


def syntax_error(q: str, exc: UnexpectedInput) -> NoReturn:
    position = (exc.pos_in_stream or 0) + 1 if exc.pos_in_stream is not None else len(q) + 1
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if isinstance(exc, UnexpectedEOF) or at_end:
        position = len(q) + 1
    expected = expectations(exc)
    if isinstance(exc, UnexpectedCharacters):
        found = "an unclosed quote" if q[position - 1] == '"' else repr(q[position - 1])
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        found = repr(str(exc.token))
    else:
        found = "the end"
    wanted = " or ".join(expected) if expected else "something else"
    invalid(
        f"found {found}, expected {wanted}", rule="syntax", position=position, expected=expected
    )


def expectations(exc: UnexpectedInput) -> list[str]:
    names = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or set()
    return sorted({EXPECTED_NAMES.get(name, name) for name in names if not name.startswith("_")})


def depth(node: Node) -> int:
    if isinstance(node, And | Or):
        return 1 + max(depth(each) for each in node.nodes)
    if isinstance(node, Not):
        return 1 + depth(node.node)
    return 1
