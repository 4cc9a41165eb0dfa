"""How logs are printed: NDJSON exactly as served, and aligned lines on a terminal."""

import io
import json
import time

from rich.console import Console

from fleetlog.client.render import NdjsonPrinter, TerminalPrinter
from tests.fixtures.search_server import stored_log


def terminal(*, color: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=color, color_system="truecolor" if color else None, width=60
    )
    return console, out


def lines(*logs: dict, utc: bool = True) -> list[str]:
    console, out = terminal()
    TerminalPrinter(console, utc=utc).print_logs(logs)
    return out.getvalue().splitlines()


class TestNdjson:
    def test_one_log_per_line_exactly_as_served(self):
        served = [stored_log(1), stored_log(2, message="ünïcode \x1b[2J", log_data={})]
        out = io.StringIO()
        NdjsonPrinter(out).print_logs(served)
        assert [json.loads(line) for line in out.getvalue().splitlines()] == served
        assert out.getvalue().count("\n") == 2


class TestTerminal:
    def test_time_level_device_message_and_data_in_aligned_columns(self):
        assert lines(stored_log(1, device_id="cam-1"), stored_log(2, device_id="cam-north-12")) == [
            "2026-11-30 12:00:01.250Z ERROR cam-1        valve 1 stuck  site=north temp_c=31.5",
            "2026-11-30 12:00:02.250Z ERROR cam-north-12 valve 2 stuck  site=north temp_c=31.5",
        ]

    def test_levels_are_short_words_of_one_width(self):
        levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTICE"]
        shown = [line.split()[2] for line in lines(*(stored_log(1, log_level=lv) for lv in levels))]
        assert shown == ["DEBUG", "INFO", "WARN", "ERROR", "CRIT", "NOTIC"]

    def test_levels_are_colored_on_a_terminal(self):
        console, out = terminal(color=True)
        TerminalPrinter(console).print_logs([stored_log(1), stored_log(2, log_level="WARNING")])
        assert "\x1b[1;31mERROR" in out.getvalue()
        assert "\x1b[33mWARN" in out.getvalue()

    def test_nested_data_is_dotted_and_values_that_need_quotes_are_json(self):
        data = {"site": {"name": "north hall", "zone": 3}, "tags": ["a"], "ok": True, "none": None}
        (line,) = lines(stored_log(1, log_data=data))
        assert line.endswith('site.name="north hall" site.zone=3 tags=["a"] ok=true none=null')

    def test_control_characters_are_shown_escaped_not_sent_to_the_terminal(self):
        (line,) = lines(stored_log(1, message="boom\x1b[2J", device_id="cam\x07", log_data={}))
        assert "boom\\x1b[2J" in line
        assert "cam\\x07" in line
        assert "\x1b" not in line

    def test_times_are_local_unless_asked_for_utc(self, monkeypatch):
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        try:
            assert lines(stored_log(1), utc=False)[0].startswith("2026-11-30 17:30:01.250 ERROR")
        finally:
            monkeypatch.delenv("TZ")
            time.tzset()

    def test_the_device_column_grows_but_only_so_far(self):
        printer_lines = lines(stored_log(1, device_id="d" * 40), stored_log(2, device_id="cam-2"))
        assert printer_lines[1].split("ERROR ")[1].startswith("cam-2" + " " * 19 + " valve")
