"""Undoing Content-Encoding: bounded output, every gzip member, and nothing after a stream's end."""

import gzip
import random
import zlib

import pytest

from fleetlog.api.body import Inflation, decode
from fleetlog.errors import MalformedBody, PayloadTooLarge

TEXT = b'{"logs": [' + b'{"device_id": "d", "log_level": "INFO", "message": "m"}, ' * 50 + b"]}"


class TestGzipMembers:
    def test_members_inflate_to_their_concatenation(self):
        body = b"".join(gzip.compress(TEXT[i : i + 100]) for i in range(0, len(TEXT), 100))
        assert decode(body, "gzip", len(TEXT)) == TEXT

    def test_a_member_split_across_pieces_is_read_whole(self):
        payload = random.Random(7).randbytes(200_000)  # incompressible: spans pieces
        body = gzip.compress(payload[:1000]) + gzip.compress(payload)
        assert len(body) > Inflation.PIECE
        assert decode(body, "gzip", 2 * len(payload)) == payload[:1000] + payload

    def test_members_past_the_count_are_refused(self):
        body = gzip.compress(b"") * (Inflation.MAX_MEMBERS + 1)
        with pytest.raises(MalformedBody) as refused:
            decode(body, "gzip", 1024)
        assert refused.value.detail[0]["rule"] == "max_gzip_members"

    def test_the_members_together_are_held_to_the_cap(self):
        body = gzip.compress(b"x" * 600) + gzip.compress(b"x" * 600)
        with pytest.raises(PayloadTooLarge):
            decode(body, "gzip", 1000)

    def test_a_truncated_last_member_is_refused(self):
        body = gzip.compress(b"first") + gzip.compress(b"second")[:-6]
        with pytest.raises(MalformedBody, match="truncated"):
            decode(body, "gzip", 1024)


class TestDeflate:
    def test_a_zlib_stream_inflates(self):
        assert decode(zlib.compress(TEXT), "deflate", len(TEXT)) == TEXT

    def test_data_after_the_stream_is_refused(self):
        with pytest.raises(MalformedBody, match="after its end"):
            decode(zlib.compress(TEXT) + b"junk", "deflate", len(TEXT))

    def test_a_bomb_is_refused_before_it_inflates(self):
        with pytest.raises(PayloadTooLarge):
            decode(zlib.compress(b"\0" * 10_000_000), "deflate", 1_000_000)
