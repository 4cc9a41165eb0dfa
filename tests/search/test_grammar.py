"""The query language's parse: what each form means, and the 400 each mistake gets."""

import pytest

from fleetlog.records import LogLevel
from fleetlog.search.grammar import InvalidQuery, parse
from fleetlog.search.plan import (
    And,
    Attr,
    Device,
    Everything,
    Levels,
    Not,
    Op,
    Or,
    Phrase,
    Prefix,
    Regex,
    Word,
    uses_only,
)


class TestForms:
    @pytest.mark.parametrize("q", [None, "", "   "])
    def test_an_empty_query_is_every_log(self, q):
        assert parse(q) == Everything()

    def test_words_are_lowercased_and_joined_by_and(self):
        assert parse("Pump  VALVE") == And((Word("pump"), Word("valve")))
        assert parse("pump AND valve") == parse("pump valve")

    def test_and_binds_tighter_than_or(self):
        assert parse("a b OR c") == Or((And((Word("a"), Word("b"))), Word("c")))
        assert parse("a (b OR c)") == And((Word("a"), Or((Word("b"), Word("c")))))

    def test_phrases_prefixes_and_terms_with_punctuation(self):
        assert parse('"valve  stuck"') == Phrase(("valve", "stuck"))
        assert parse("press*") == Prefix("press")
        assert parse("cam-7") == Phrase(("cam", "7"))
        assert parse('"say \\"hi\\" now"') == Phrase(("say", "hi", "now"))
        assert parse('"a b" NOT ("a b")') == And((Phrase(("a", "b")), Not(Phrase(("a", "b")))))
        assert parse('message~"x\\\\" y') == And((Regex("x\\\\"), Word("y")))

    def test_negation(self):
        assert parse("-pump") == Not(Word("pump"))
        assert parse("NOT pump") == Not(Word("pump"))
        assert parse("--pump") == Word("pump")
        assert parse("-(a OR b)") == Not(Or((Word("a"), Word("b"))))

    def test_keywords_only_as_whole_words(self):
        assert parse("ORANGE") == Word("orange")
        assert parse("NOTE") == Word("note")

    def test_fields(self):
        assert parse("device:cam-7") == Device("cam-7")
        assert parse("device:cam-*") == Device("cam-", prefix=True)
        assert parse('device:"a b"') == Device("a b")
        assert parse("level:Error") == Levels(frozenset({LogLevel.ERROR}))
        assert parse("level>=error") == Levels(frozenset({LogLevel.ERROR, LogLevel.CRITICAL}))
        assert parse("level<info") == Levels(frozenset({LogLevel.DEBUG}))
        assert parse("attr.a.b-c:x") == Attr(("a", "b-c"), Op.EQ, "x")
        assert parse("attr.t>-5.5") == Attr(("t",), Op.GT, "-5.5")
        assert parse('message~"a\\d+"') == Regex("a\\d+")
        assert parse("message:Pump") == Word("pump")

    def test_which_plans_the_rollups_answer(self):
        assert uses_only(parse("device:a* -level:debug"), (Device, Levels))
        assert not uses_only(parse("device:a* pump"), (Device, Levels))


class TestMistakes:
    @pytest.mark.parametrize(
        ("q", "rule", "position"),
        [
            ("pump (", "syntax", 7),
            ("pump )", "syntax", 6),
            ("a OR", "syntax", 5),
            ('"unclosed', "syntax", 1),
            ("foo:bar", "unknown_field", 1),
            ("pump level:loud", "level", 6),
            ("device>x", "operator", 1),
            ("attr.t>warm", "number", 1),
            ("attr.t~x", "operator", 1),
            ('message~"("', "regex", 1),
            ("pump ...", "no_words", 6),
            ("attr.:x", "unknown_field", 1),
        ],
    )
    def test_each_gets_a_400_naming_the_rule_and_position(self, q, rule, position):
        with pytest.raises(InvalidQuery) as refused:
            parse(q)
        (problem,) = refused.value.detail
        assert refused.value.status == 400
        assert problem["field"] == "q"
        assert problem["rule"] == rule
        assert problem["position"] == position

    def test_a_syntax_error_says_what_was_expected(self):
        with pytest.raises(InvalidQuery) as refused:
            parse("pump (")
        (problem,) = refused.value.detail
        assert "a word" in problem["expected"]
        assert "expected" in problem["message"]

    def test_too_long_and_too_deep(self):
        with pytest.raises(InvalidQuery, match="longer"):
            parse("a " * 3000)
        with pytest.raises(InvalidQuery, match="deeper"):
            parse("(a OR " * 40 + "b" + ")" * 40)
