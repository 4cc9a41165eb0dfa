"""Search pages and error lines, against a real HTTP server speaking the search contract."""

import httpx
import pytest

from fleetlog.client.api import ClientError, LogApi, Search, describe_error
from fleetlog.localstack import free_port
from tests.fixtures.search_server import BAD_QUERY, SearchServer, serving, stored_log


def logs(n: int) -> list[dict]:
    return [stored_log(i) for i in range(n, 0, -1)]


def limits_asked(server: SearchServer) -> list[str]:
    return [seen.params["limit"] for seen in server.seen]


class TestPages:
    def test_follows_the_cursor_until_the_limit_asking_no_more_than_it_needs(self):
        with serving(SearchServer(logs=logs(2500))) as server, LogApi(server.url) as api:
            pages = list(api.pages(Search(limit=2100)))
        assert [len(page) for page in pages] == [1000, 1000, 100]
        assert [log["id"] for page in pages for log in page] == list(range(2500, 400, -1))
        assert limits_asked(server) == ["1000", "1000", "100"]
        assert [seen.params.get("cursor") for seen in server.seen] == [None, "1000", "2000"]

    def test_limit_zero_reads_every_page_until_next_cursor_is_absent(self):
        with serving(SearchServer(logs=logs(2500))) as server, LogApi(server.url) as api:
            assert sum(len(page) for page in api.pages(Search(limit=0))) == 2500
        assert limits_asked(server) == ["1000", "1000", "1000"]

    def test_a_page_is_asked_for_only_when_the_one_before_was_taken(self):
        with serving(SearchServer(logs=logs(30))) as server, LogApi(server.url) as api:
            pages = api.pages(Search(limit=0))
            next(pages)
            assert len(server.seen) == 1
            pages.close()

    def test_sends_the_search_and_the_key_as_a_bearer_token(self):
        server = SearchServer(logs=logs(5), api_key="flk_read")
        search = Search(q="level>=error", since="2026-11-30T12:00:00Z", order="asc", limit=3)
        with serving(server), LogApi(server.url, api_key="flk_read") as api:
            assert [log["id"] for page in api.pages(search) for log in page] == [1, 2, 3]
        (seen,) = server.seen
        assert seen.params == {
            "q": "level>=error",
            "since": "2026-11-30T12:00:00Z",
            "order": "asc",
            "limit": "3",
        }
        assert seen.headers["authorization"] == "Bearer flk_read"


class TestErrors:
    def error(self, server: SearchServer, search: Search, *, api_key=None) -> ClientError:
        with serving(server), LogApi(server.url, api_key=api_key) as api:
            with pytest.raises(ClientError) as raised:
                list(api.pages(search))
        return raised.value

    def test_a_syntax_error_is_one_line_naming_the_position(self):
        error = self.error(SearchServer(), Search(q=BAD_QUERY))
        assert error.message == (
            "the query cannot be searched at position 15: found ')', expected a word (HTTP 400)"
        )
        assert not error.retryable

    def test_a_refused_key_says_so(self):
        error = self.error(SearchServer(api_key="flk_read"), Search(), api_key="flk_wrong")
        assert error.message == "the credential is unknown or revoked (HTTP 401)"
        assert error.status == 401

    def test_connection_refused_names_the_server(self):
        url = f"http://127.0.0.1:{free_port()}"
        with LogApi(url) as api, pytest.raises(ClientError) as raised:
            list(api.pages(Search()))
        assert raised.value.message == f"cannot connect to {url}: Connection refused"

    def test_an_address_that_is_not_an_http_url_is_refused_before_any_request(self):
        with pytest.raises(ClientError, match="'localhost' is not a URL"):
            LogApi("localhost")


class TestDescribeError:
    def test_the_detail_is_added_when_the_message_does_not_say_it(self):
        body = {
            "error": "invalid_query",
            "detail": [{"field": "q", "rule": "syntax", "position": 7, "message": "found ')'"}],
        }
        assert describe_error(httpx.Response(400, json=body)) == (
            "invalid_query; q at position 7: found ')'"
        )

    def test_each_field_rule_broken_is_named(self):
        body = {
            "error": "validation_error",
            "message": "the request breaks a parameter rule",
            "detail": [{"field": "limit", "rule": "less_than_equal", "message": "at most 1000"}],
        }
        assert describe_error(httpx.Response(422, json=body)) == (
            "the request breaks a parameter rule; limit: at most 1000"
        )

    def test_a_body_that_is_not_json_gives_the_status_line(self):
        assert describe_error(httpx.Response(502, text="<html>bad gateway</html>")) == (
            "Bad Gateway"
        )
