"""Prometheus label sets as Loki protobuf streams carry them."""

import pytest

from fleetlog.shippers.labelset import LabelSetError, parse_labels


class TestLabelSets:
    @pytest.mark.parametrize(
        ("text", "labels"),
        [
            ("{}", {}),
            (" { } ", {}),
            ('{job="api"}', {"job": "api"}),
            ('{job="api", host="cam-7"}', {"job": "api", "host": "cam-7"}),
            ('{job="api",host="cam-7",}', {"job": "api", "host": "cam-7"}),
            ('{ job = "api" ,\n host="" }', {"job": "api", "host": ""}),
            ('{a:b_2="x"}', {"a:b_2": "x"}),
            ('{"service.name"="pump"}', {"service.name": "pump"}),
            ("{job='api'}", {"job": "api"}),
            ("{path=`C:\\temp\\n`}", {"path": "C:\\temp\\n"}),
            ('{v=",}={"}', {"v": ",}={"}),
        ],
    )
    def test_label_sets_are_read(self, text, labels):
        assert parse_labels(text) == labels

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            (r'{v="say \"hi\""}', 'say "hi"'),
            (r'{v="back\\slash"}', "back\\slash"),
            (r'{v="two\nlines\ttab"}', "two\nlines\ttab"),
            (r'{v="\a\b\f\r\v"}', "\a\b\f\r\v"),
            (r'{v="\u00e9t\u00E9 \U0001F600"}', "été 😀"),
            (r'{v="\xc3\xa9 \303\251"}', "é é"),
            (r"{v='it\'s'}", "it's"),
            ('{v="été ünïcode"}', "été ünïcode"),
        ],
    )
    def test_go_escapes_are_undone(self, text, value):
        assert parse_labels(text) == {"v": value}

    @pytest.mark.parametrize(
        ("text", "reason", "position"),
        [
            ("", "expected '{', found the end", 1),
            ('job="api"', "expected '{', found 'j'", 1),
            ('{job="api"', "expected '}', found the end", 11),
            ('{job="api"} x', "expected nothing after the closing '}', found 'x'", 13),
            ("{job=api}", "expected a quoted label value, found 'a'", 6),
            ('{job~"api"}', "expected '=', found '~'", 5),
            ('{9job="api"}', "expected a label name, found '9'", 2),
            ('{job="api" host="x"}', "expected '}', found 'h'", 12),
            ('{job="a\nb"}', "expected a quoted label value, found '\"'", 6),
            ("{,}", "expected a label name, found ','", 2),
            ('{job="a", job="b"}', "the label 'job' is given twice", 11),
            (r'{v="a\qb"}', "unknown escape sequence", 6),
            (r'{v="\xff"}', "the escaped bytes are not UTF-8", 5),
            (r'{v="\ud800"}', "escape of no Unicode character", 5),
            (r'{v="\777"}', "octal escape above \\377", 5),
            ('{""="x"}', "a label name must not be empty", 2),
        ],
    )
    def test_garbage_is_refused_where_it_breaks(self, text, reason, position):
        with pytest.raises(LabelSetError) as refused:
            parse_labels(text)
        assert (refused.value.reason, refused.value.position) == (reason, position)
        assert str(refused.value) == f"{reason} at character {position}"
