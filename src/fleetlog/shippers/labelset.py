"""Prometheus label sets as text, `{job="api", host="cam-7"}`: how a Loki protobuf stream
names its labels.

A real parser, not a split on commas: values are quoted strings with Go's escapes (what
Prometheus' `Labels.String()` writes with `strconv.Quote`), in double quotes, single quotes or
backquotes (raw); names are Prometheus names, or quoted (Prometheus 3's UTF-8 names). Anything
else is refused with the character where it went wrong, never guessed at.
"""

import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`', re.DOTALL)
SPACE = re.compile(r"\s*")
ESCAPE = re.compile(
    r"\\(?:x(?P<hex>[0-9a-fA-F]{2})|(?P<octal>[0-7]{3})"
    r"|u(?P<u4>[0-9a-fA-F]{4})|U(?P<u8>[0-9a-fA-F]{8})|(?P<char>[abfnrtv\\'\"]))"
)
CHARS = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class LabelSetError(ValueError):
    """The text is not a label set; `position` is the 1-based character where it broke."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at character {position}")
        self.reason = reason
        self.position = position


def parse_labels(text: str) -> dict[str, str]:
    """`{name="value", ...}` as a dict; a name given twice is refused, as Loki refuses it."""
    return LabelSetParser(text).parse()


class LabelSetParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        self.expect("{")
        while not self.take("}"):
            at = self.skip()
            name = self.name()
            if name in labels:
                raise LabelSetError(f"the label {name!r} is given twice", at + 1)
            self.expect("=")
            labels[name] = self.quoted("a quoted label value")
            if not self.take(","):
                self.expect("}")
                break
        if self.skip() != len(self.text):
            raise self.error("nothing after the closing '}'")
        return labels

    def skip(self) -> int:
        match = SPACE.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()
        return self.pos

    def take(self, token: str) -> bool:
        if self.text.startswith(token, self.skip()):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.take(token):
            raise self.error(f"'{token}'")

    def name(self) -> str:
        start = self.pos
        match = NAME.match(self.text, start)
        if match is None:
            name = self.quoted("a label name")
            if not name:
                raise LabelSetError("a label name must not be empty", start + 1)
            return name
        self.pos = match.end()
        return match.group()

    def quoted(self, what: str) -> str:
        match = QUOTED.match(self.text, self.skip())
        if match is None:
            raise self.error(what)
        self.pos = match.end()
        body = match.group()[1:-1]
        if match.group()[0] == "`" or "\\" not in body:
            return body
        return unescape(body, match.start() + 2)

    def error(self, expected: str) -> LabelSetError:
        found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
        return LabelSetError(f"expected {expected}, found {found}", self.pos + 1)


def unescape(body: str, position: int) -> str:
    """A quoted string's text with Go's escapes undone; `\\x` and octal escapes are bytes of
    UTF-8, as in Go, so the whole is decoded once at the end."""
    decoded = bytearray()
    last = 0
    for match in ESCAPE.finditer(body):
        decoded += literal(body[last : match.start()], position + last)
        decoded += escaped(match, position + match.start())
        last = match.end()
    decoded += literal(body[last:], position + last)
    try:
        return decoded.decode()
    except UnicodeDecodeError:
        raise LabelSetError("the escaped bytes are not UTF-8", position) from None


def literal(text: str, position: int) -> bytes:
    backslash = text.find("\\")
    if backslash >= 0:
        raise LabelSetError("unknown escape sequence", position + backslash)
    return text.encode()


def escaped(match: re.Match[str], position: int) -> bytes:
    if match["hex"] is not None:
        return bytes([int(match["hex"], 16)])
    if match["octal"] is not None:
        if int(match["octal"], 8) > 0xFF:
            raise LabelSetError("octal escape above \\377", position)
        return bytes([int(match["octal"], 8)])
    if match["char"] is not None:
        return CHARS.get(match["char"], match["char"]).encode()
    code = int(match["u4"] or match["u8"], 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise LabelSetError("escape of no Unicode character", position)
    return chr(code).encode()
