"""RFC 5424 structured data: `-`, or `[SD-ID name="value" …]` elements one after the other.

Parsed strictly, since a broken block leaves no way to tell where the message starts: an
element that does not close, a name with a space or `=`, a value without its closing quote
make the whole line invalid. Values may hold `]` unescaped (many senders do not escape it);
`\\"`, `\\\\` and `\\]` are unescaped, any other backslash is kept, as the RFC says.
"""

import re

from fleetlog.listeners.errors import InvalidLine

# SD-NAME: 1..32 printable US-ASCII characters but `=`, space, `]` and `"`.
ELEMENT_START = re.compile(r"\[([!#-<>-\\^-~]{1,32})")
PARAM = re.compile(r' ([!#-<>-\\^-~]{1,32})="((?:[^"\\]|\\.)*)"', re.DOTALL)
ESCAPED = re.compile(r'\\(["\\\]])')

Params = dict[str, str | list[str]]


def split_structured_data(text: str) -> tuple[dict[str, Params], str]:
    """The structured data at the start of `text`, by SD-ID, and what follows it (the MSG).

    A parameter given once is a string, one given several times a list of its values; an
    SD-ID given twice has its parameters merged.
    """
    if text.startswith("-"):
        return {}, after_separator(text, 1)
    if not text.startswith("["):
        raise InvalidLine("structured data must be - or start with [")
    elements: dict[str, Params] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        pos = read_element(text, pos, elements)
    return elements, after_separator(text, pos)


def read_element(text: str, pos: int, elements: dict[str, Params]) -> int:
    """Read the element starting at `pos` into `elements`; returns the position after it."""
    start = ELEMENT_START.match(text, pos)
    if start is None:
        raise InvalidLine("a structured-data element has no valid SD-ID")
    params = elements.setdefault(start.group(1), {})
    pos = start.end()
    while (param := PARAM.match(text, pos)) is not None:
        add_param(params, param.group(1), ESCAPED.sub(r"\1", param.group(2)))
        pos = param.end()
    if not text.startswith("]", pos):
        raise InvalidLine("a structured-data element is not closed by ]")
    return pos + 1


def add_param(params: Params, name: str, value: str) -> None:
    given = params.get(name)
    if given is None:
        params[name] = value
    elif isinstance(given, list):
        given.append(value)
    else:
        params[name] = [given, value]


def after_separator(text: str, pos: int) -> str:
    """The MSG after the structured data: nothing, or what follows one space."""
    if pos == len(text):
        return ""
    if text[pos] != " ":
        raise InvalidLine("the structured data is not followed by a space")
    return text[pos + 1 :]
