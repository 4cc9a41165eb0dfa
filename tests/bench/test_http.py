"""The bench's HTTP/1.1 framing: requests written whole, answers read by Content-Length."""

import pytest

from fleetlog.bench.http import ProtocolError, content_length, frame_request
from fleetlog.bench.report import percentile


def test_a_framed_request_is_a_complete_post():
    data = frame_request(
        host="127.0.0.1:8000", path="/api/logs/batch", body=b"{}", headers=[("X-API-Key", "k")]
    )
    assert data == (
        b"POST /api/logs/batch HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 2\r\n"
        b"X-API-Key: k\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\ncontent-type: application/json", 42),
        (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 7", 7),
        (b"HTTP/1.1 204 No Content\r\ndate: Mon, 30 Nov 2026 16:00:00 GMT", 0),
    ],
)
def test_content_length_is_found_in_any_case_and_position(head, length):
    assert content_length(head) == length


def test_a_chunked_answer_is_refused():
    with pytest.raises(ProtocolError):
        content_length(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) == 0.0
