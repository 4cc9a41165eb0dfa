"""`fleetlog query` and `fleetlog tail` as people run them, against a real HTTP server speaking
the search and tail contract."""

import asyncio
import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner, Result

from fleetlog.auth.principals import Scope
from fleetlog.cli import app
from fleetlog.localstack import free_port
from tests.fixtures.auth import add_key, bearer, secure_settings
from tests.fixtures.process import FleetlogProcess, Server, running_server
from tests.fixtures.records import make_log
from tests.fixtures.search_server import (
    BAD_QUERY,
    SearchServer,
    TailScript,
    serving,
    sse_log,
    stored_log,
)

KEY = "flk_read"


def logs(n: int) -> list[dict]:
    return [stored_log(i) for i in range(n, 0, -1)]


def fleetlog(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def interruptible() -> None:
    """Ctrl-C as a terminal sends it: a test run started in the background (`cmd &`, nohup)
    ignores SIGINT, its children inherit that, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fleetlog_process(
    *args: str, stdout: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleetlog", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env or {**os.environ, "FLEETLOG_API_KEY": KEY},
        preexec_fn=interruptible,
    )


class TestQuery:
    def test_piped_output_is_ndjson_of_the_servers_logs_across_pages(self):
        server = SearchServer(logs=logs(2500), api_key=KEY)
        with serving(server):
            result = fleetlog(
                "query",
                "level>=error",
                "--url",
                server.url,
                "--limit",
                "2100",
                env={"FLEETLOG_API_KEY": KEY},
            )
        assert result.exit_code == 0, result.output
        printed = [json.loads(line) for line in result.stdout.splitlines()]
        assert printed == logs(2500)[:2100]
        assert [seen.params["limit"] for seen in server.seen] == ["1000", "1000", "100"]
        assert {seen.params["q"] for seen in server.seen} == {"level>=error"}

    def test_a_span_ago_is_fixed_once_for_every_page(self):
        server = SearchServer(logs=logs(1500))
        with serving(server):
            before = datetime.now(UTC)
            result = fleetlog("query", "--since", "1h", "--url", server.url, "--limit", "0")
        assert result.exit_code == 0, result.output
        (since,) = {seen.params["since"] for seen in server.seen}
        assert since.endswith("Z")
        assert abs(datetime.fromisoformat(since) - (before - timedelta(hours=1))) < timedelta(
            seconds=5
        )
        assert len(server.seen) == 2

    def test_url_and_key_come_from_the_environment(self):
        server = SearchServer(logs=logs(3), api_key=KEY)
        with serving(server):
            result = fleetlog("query", env={"FLEETLOG_URL": server.url, "FLEETLOG_API_KEY": KEY})
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) == 3

    def test_a_syntax_error_is_one_line_naming_the_position(self):
        with serving(SearchServer()) as server:
            result = fleetlog("query", BAD_QUERY, "--url", server.url)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            "error: the query cannot be searched at position 15: found ')', expected a word "
            "(HTTP 400)\n"
        )

    def test_no_key_for_a_server_that_wants_one(self):
        with serving(SearchServer(api_key=KEY)) as server:
            result = fleetlog("query", "--url", server.url, env={"FLEETLOG_API_KEY": ""})
        assert result.exit_code == 1
        assert result.stderr == (
            "error: the credential is unknown or revoked (HTTP 401) "
            "(no API key given: set FLEETLOG_API_KEY)\n"
        )

    def test_connection_refused(self):
        url = f"http://127.0.0.1:{free_port()}"
        result = fleetlog("query", "--url", url)
        assert result.exit_code == 1
        assert result.stderr == f"error: cannot connect to {url}: Connection refused\n"

    def test_a_bad_time_is_refused_before_any_request(self):
        result = fleetlog("query", "--since", "yesterday", "--url", "http://127.0.0.1:9")
        assert result.exit_code == 2
        assert "since is not a time: 'yesterday'" in result.stderr

    def test_a_reader_that_stops_early_ends_the_query_quietly(self):
        with serving(SearchServer(logs=logs(3000))) as server:
            process = fleetlog_process(
                "query", "--url", server.url, "--limit", "0", stdout=subprocess.PIPE
            )
            assert process.stdout is not None
            assert json.loads(process.stdout.readline())["id"] == 3000
            process.stdout.close()
            _, errors = process.communicate(timeout=30)
        assert process.returncode == 0
        assert errors == b""

    def test_on_a_terminal_logs_are_aligned_lines(self):
        with serving(SearchServer(logs=logs(2))) as server:
            primary, secondary = pty.openpty()
            process = fleetlog_process("query", "--url", server.url, "--utc", stdout=secondary)
            os.close(secondary)
            _, errors = process.communicate(timeout=30)
            shown = read_all(primary)
        assert process.returncode == 0, errors
        assert "2026-11-30 12:00:02.250Z" in shown
        assert "valve 2 stuck" in shown
        assert "{" not in shown


def read_all(fd: int) -> str:
    """What a process wrote to a pseudo-terminal, once it has ended."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


class TestTail:
    def test_follows_resumes_tells_of_dropped_logs_and_ends_on_ctrl_c(self):
        dropped = 'event: dropped\ndata: {"dropped": 5}\n\n'
        first = TailScript([sse_log(stored_log(1)), dropped, sse_log(stored_log(2))], then="end")
        server = SearchServer(
            api_key=KEY, tails=deque([first, TailScript([": hi\n\n", sse_log(stored_log(3))])])
        )
        with serving(server):
            process = fleetlog_process(
                "tail", "attr.site:north", "--url", server.url, stdout=subprocess.PIPE
            )
            assert process.stdout is not None
            printed = [json.loads(process.stdout.readline()) for _ in range(3)]
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=30)
        assert printed == [stored_log(1), stored_log(2), stored_log(3)]
        assert [seen.headers.get("last-event-id") for seen in server.seen] == [None, "2"]
        assert process.returncode == 130
        notices = errors.decode().splitlines()
        assert notices[0] == (
            "fleetlog: the server dropped 5 logs for this tail: it was reading too slowly"
        )
        assert notices[1].startswith("fleetlog: the server ended the stream; reconnecting in")
        assert "Traceback" not in errors.decode()

    @pytest.mark.parametrize("status", [401, 400])
    def test_a_refusal_at_the_start_is_one_line_and_exit_1(self, status):
        server = SearchServer(api_key=KEY if status == 401 else None)
        server.tails.append(TailScript(status=status))
        with serving(server):
            result = fleetlog("tail", "--url", server.url, env={"FLEETLOG_API_KEY": "flk_wrong"})
        assert result.exit_code == 1
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error: ")
        assert f"(HTTP {status})" in result.stderr


@pytest.fixture(scope="module")
def fleetlog_serve(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A real embedded `fleetlog serve` holding 1,200 logs: its URL and a read key."""
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    settings = secure_settings(data_dir)
    ingest = asyncio.run(add_key(settings, "cams", Scope.INGEST))
    read = asyncio.run(add_key(settings, "reader", Scope.READ))
    with running_server(data_dir) as server, httpx.Client(base_url=server.url) as http:
        for first in (0, 600):
            batch = {"logs": [seeded_log(n) for n in range(first, first + 600)]}
            answer = http.post("/api/logs/batch", json=batch, headers=bearer(ingest))
            assert answer.status_code == 200, answer.text
        yield server.url, read


def seeded_log(n: int) -> dict:
    level = "ERROR" if n % 4 == 0 else "INFO"
    return make_log(device_id=f"cam-{n % 3}", log_level=level, message=f"valve {n} stuck")


class TestAgainstFleetlogServe:
    def query(self, served: tuple[str, str], *args: str) -> Result:
        url, key = served
        return fleetlog("query", *args, "--url", url, env={"FLEETLOG_API_KEY": key})

    def test_every_match_across_pages_newest_first_without_repeats(self, fleetlog_serve):
        result = self.query(fleetlog_serve, "--limit", "1100", "--since", "1h")
        assert result.exit_code == 0, result.output
        printed = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(printed) == len({log["id"] for log in printed}) == 1100
        assert [log["id"] for log in printed] == sorted(
            (log["id"] for log in printed), reverse=True
        )
        assert set(printed[0]) == {
            "id",
            "device_id",
            "log_level",
            "message",
            "log_data",
            "created_at",
            "received_at",
        }

    def test_the_query_language_reaches_the_server(self, fleetlog_serve):
        result = self.query(fleetlog_serve, "level>=error device:cam-1", "--limit", "0")
        assert result.exit_code == 0, result.output
        found = sorted(json.loads(line)["message"] for line in result.stdout.splitlines())
        expected = [seeded_log(n) for n in range(1200) if n % 4 == 0 and n % 3 == 1]
        assert found == sorted(log["message"] for log in expected)

    def test_oldest_first(self, fleetlog_serve):
        result = self.query(fleetlog_serve, "--order", "asc", "--limit", "2")
        assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == [
            "valve 0 stuck",
            "valve 1 stuck",
        ]

    def test_a_syntax_error_names_its_position(self, fleetlog_serve):
        result = self.query(fleetlog_serve, "level>=error )")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: the query cannot be searched at position 14: ")
        assert result.stderr.count("\n") == 1

    def test_brackets_in_the_servers_words_are_printed_as_they_are(self, fleetlog_serve):
        result = self.query(fleetlog_serve, "level:loud[red]")
        assert result.exit_code == 1
        assert "unknown level 'loud[red]'" in result.stderr

    def test_without_a_key(self, fleetlog_serve):
        url, _ = fleetlog_serve
        result = fleetlog("query", "--url", url, env={"FLEETLOG_API_KEY": ""})
        assert result.exit_code == 1
        assert "(HTTP 401) (no API key given: set FLEETLOG_API_KEY)" in result.stderr


def serve_on(data_dir, port: int) -> FleetlogProcess:
    """`fleetlog serve` on this port, ready."""
    server = Server(data_dir)
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    server.args[server.args.index("--port") + 1] = str(port)
    server.start()
    server.wait_ready()
    return server


def tails_open(http: httpx.Client) -> bool:
    return "fleetlog_tails 1.0" in http.get("/metrics").text


def wait_until_true(condition, *, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def send(http: httpx.Client, word: str) -> None:
    batch = {
        "logs": [make_log(device_id=d, message=f"{word} from {d}") for d in ("cam-0", "cam-1")]
    }
    assert http.post("/api/logs/batch", json=batch).status_code == 200


class TestTailAgainstFleetlogServe:
    def test_follows_new_logs_and_misses_none_across_a_server_restart(self, tmp_path):
        data_dir = tmp_path / "data"
        settings = secure_settings(data_dir)
        ingest = asyncio.run(add_key(settings, "cams", Scope.INGEST))
        read = asyncio.run(add_key(settings, "reader", Scope.READ))
        port = free_port()
        server = serve_on(data_dir, port)
        tail = fleetlog_process(
            "tail",
            "device:cam-1",
            "--url",
            server.url,
            stdout=subprocess.PIPE,
            env={**os.environ, "FLEETLOG_API_KEY": read},
        )
        assert tail.stdout is not None
        try:
            with httpx.Client(base_url=server.url, headers=bearer(ingest)) as http:
                wait_until_true(lambda: tails_open(http), what="the tail to connect")
                send(http, "first")
                assert json.loads(tail.stdout.readline())["message"] == "first from cam-1"
                server.stop()
                server = serve_on(data_dir, port)
                # Sent before or after the tail is back: either way it must be shown.
                send(http, "second")
                assert json.loads(tail.stdout.readline())["message"] == "second from cam-1"
        finally:
            tail.send_signal(signal.SIGINT)
            _, errors = tail.communicate(timeout=30)
            server.stop()
        assert tail.returncode == 130
        assert "reconnecting in" in errors.decode()
        assert "Traceback" not in errors.decode()
