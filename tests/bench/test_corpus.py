"""The query workload's corpus: deterministic, and shaped as promised (devices, week, levels,
Zipf words, rare words placed where the bench expects them)."""

import gzip
from collections import Counter
from datetime import UTC, datetime
from functools import cache

from fleetlog.bench.corpus import (
    DEVICE_PREFIXES,
    PHRASES,
    RARE_SHARE,
    RARE_WORDS,
    SPAN_S,
    Corpus,
)
from fleetlog.records import LogBatchIn
from fleetlog.search.plan import words

ANCHOR = 1_795_000_000.0
LOGS = 20_000
DAY_S = 86_400.0


def make_corpus(**overrides):
    return Corpus(**{"seed": 7, "logs": LOGS, "anchor": ANCHOR, **overrides})


@cache
def every_log():
    corpus = make_corpus()
    return [log for request in range(corpus.requests) for log in corpus.batch_logs(request)]


def share(predicate):
    logs = every_log()
    return sum(1 for log in logs if predicate(log)) / len(logs)


class TestDeterminism:
    def test_the_same_seed_gives_the_same_bodies(self):
        assert make_corpus().body(3) == make_corpus().body(3)

    def test_another_seed_gives_other_logs(self):
        assert make_corpus().batch_logs(3) != make_corpus(seed=8).batch_logs(3)

    def test_requests_cover_every_log_once(self):
        corpus = make_corpus(logs=2_500)
        numbers = [n for request in range(corpus.requests) for n in corpus.log_range(request)]
        assert numbers == list(range(2_500))
        assert len(corpus.batch_logs(corpus.requests - 1)) == 500


class TestShape:
    def test_bodies_are_valid_gzipped_batches(self):
        batch = LogBatchIn.model_validate_json(gzip.decompress(make_corpus().body(0)))
        assert len(batch.logs) == 1000
        assert all(log.timestamp is not None for log in batch.logs)

    def test_live_logs_carry_no_event_time(self):
        logs = make_corpus(live=True, batch=100).batch_logs(0)
        assert len(logs) == 100
        assert all("timestamp" not in log for log in logs)

    def test_a_thousand_devices_under_several_prefixes(self):
        devices = Counter(log["device_id"] for log in every_log())
        assert len(devices) == 1000
        assert {device.split("-")[0] for device in devices} == set(DEVICE_PREFIXES)
        # Some devices are much noisier than others.
        assert max(devices.values()) > 10 * min(devices.values())

    def test_event_times_spread_over_the_week_before_the_anchor(self):
        ages = [ANCHOR - log["timestamp"] for log in every_log()]
        assert all(0 < age < SPAN_S for age in ages)
        days = Counter(int(age // DAY_S) for age in ages)
        assert sorted(days) == list(range(7))
        assert all(0.12 < n / LOGS < 0.17 for n in days.values())

    def test_levels_are_skewed_to_debug_and_info(self):
        levels = Counter(log["log_level"] for log in every_log())
        assert (levels["DEBUG"] + levels["INFO"]) / LOGS > 0.8
        assert 0.02 < levels["ERROR"] / LOGS < 0.07
        assert 0 < levels["CRITICAL"] / LOGS < 0.01

    def test_log_data_holds_site_temperature_and_ok(self):
        data = every_log()[0]["log_data"]
        assert data.keys() == {"site", "temp_c", "ok", "line"}
        assert share(lambda log: log["log_data"]["site"] == "north") > 0.3

    def test_the_common_words_are_very_common(self):
        for word in make_corpus().vocabulary[:5]:
            assert share(lambda log, word=word: word in words(log["message"])) > 0.1

    def test_each_phrase_is_in_many_messages(self):
        for phrase in PHRASES:
            assert share(lambda log, phrase=phrase: phrase in log["message"]) > 0.02


class TestRareWords:
    def test_each_rare_word_is_in_its_placed_logs_only(self):
        corpus = make_corpus()
        found = Counter(
            word
            for log in every_log()
            for word in words(log["message"])
            if word in corpus.rare_words
        )
        assert found == dict.fromkeys(corpus.rare_words, corpus.rare_per_word)
        assert len(found) == RARE_WORDS
        assert not set(corpus.rare_words) & set(corpus.vocabulary)

    def test_the_last_day_holds_the_known_number_of_each(self):
        corpus = make_corpus()
        recent = Counter(
            word
            for log in every_log()
            if ANCHOR - log["timestamp"] < DAY_S
            for word in words(log["message"])
            if word in corpus.rare_words
        )
        assert corpus.rare_in_window(DAY_S) >= 1
        assert recent == dict.fromkeys(corpus.rare_words, corpus.rare_in_window(DAY_S))

    def test_at_full_size_a_rare_word_is_in_one_log_in_100_000(self):
        corpus = make_corpus(logs=10_000_000)
        assert corpus.rare_per_word == 100
        assert corpus.rare_per_word / corpus.logs == RARE_SHARE
        assert corpus.rare_in_window(DAY_S) == 14


def test_the_days_of_the_week_hold_every_event_time():
    days = make_corpus().days()
    assert len(days) == 8
    seen = {datetime.fromtimestamp(log["timestamp"], UTC).date() for log in every_log()}
    assert seen <= set(days)
