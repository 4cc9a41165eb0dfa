"""The query mix and the visibility probe, against scripted answers (no server)."""

import math

import httpx

from fleetlog.bench.corpus import RARE_WORDS, Corpus
from fleetlog.bench.queries import QUERY_NAMES, QueryMix, QueryTimes, rfc3339, rows_of, time_mix
from fleetlog.bench.visibility import ProbePlan, Visibility, probe_visibility
from fleetlog.search.grammar import parse
from fleetlog.search.matcher import LogFields, predicate

ANCHOR = 1_795_000_000.0
MIX = QueryMix(Corpus(seed=3, logs=10_000, anchor=ANCHOR))


class TestMix:
    def test_every_search_parses(self):
        for name in QUERY_NAMES:
            for run in range(10):
                _, params = MIX.request(name, run)
                parse(params.get("q"))

    def test_the_last_day_is_the_day_before_the_anchor(self):
        for name in ("rare_word_24h", "phrase_24h", "attr_filter_24h", "counts_by_level_24h_1m"):
            _, params = MIX.request(name, 0)
            assert params["since"] == rfc3339(ANCHOR - 86_400)
        _, params = MIX.request("common_word_first_page", 0)
        assert "since" not in params

    def test_runs_vary_their_parameters(self):
        rare = {MIX.request("rare_word_24h", run)[1]["q"] for run in range(50)}
        assert rare == set(MIX.corpus.rare_words)
        assert len(rare) == RARE_WORDS
        devices = {MIX.request("device_newest", run)[0] for run in range(50)}
        assert len(devices) > 40

    def test_the_attribute_filter_means_a_site_and_a_serious_level(self):
        _, params = MIX.request("attr_filter_24h", 0)
        matches = predicate(parse(params["q"]))
        log = {"device_id": "cam-0001", "message": "x", "log_data": {"site": "north"}}
        assert matches(LogFields(**log, log_level="ERROR"))
        assert not matches(LogFields(**log, log_level="INFO"))

    def test_rows_are_logs_or_buckets(self):
        assert rows_of("/api/logs", {"data": [{}, {}], "took_ms": 1}) == 2
        assert rows_of("/api/logs/count", {"buckets": [{}] * 3}) == 3
        assert rows_of("/api/logs/count", {"data": []}) is None


def scripted(handler):
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://fleetlog")


async def test_time_mix_measures_after_the_warm_up_and_counts_failures():
    def answer(request):
        if request.url.path == "/api/logs/count":
            return httpx.Response(200, json={"buckets": [{"count": 1}]})
        if "valve" in request.url.params.get("q", ""):
            return httpx.Response(400, json={"error": "bad"})
        return httpx.Response(200, json={"data": [{"id": 1}] * 5, "took_ms": 3})

    async with scripted(answer) as client:
        times = await time_mix(client, MIX, runs=12, warmup=2)
    assert times.keys() == set(QUERY_NAMES)
    assert len(times["device_newest"].latencies) == 12
    assert times["device_newest"].as_json()["rows"] == 5
    assert times["counts_by_level_24h_1m"].as_json()["rows"] == 1
    assert times["rare_word_24h"].as_json()["server_p50_ms"] == 3
    # "valve stuck" is one phrase of six: 2 of the 12 measured runs.
    assert times["phrase_24h"].as_json()["errors"] == {"400": 2}


def test_query_times_report_nearest_rank_percentiles_and_median_rows():
    times = QueryTimes(latencies=[n / 1000 for n in range(1, 101)], rows=[1, 1, 9])
    assert times.as_json() == {
        "p50_ms": 50.0,
        "p95_ms": 95.0,
        "p99_ms": 99.0,
        "rows": 1,
        "errors": {},
        "server_p50_ms": None,
    }


def test_a_marker_never_found_makes_the_percentiles_it_reaches_null():
    visibility = Visibility(seconds=[0.1] * 98 + [0.2, math.inf])
    summary = visibility.as_json()
    assert summary["not_found"] == 1
    assert summary["p99_ms"] == 200.0
    assert summary["max_ms"] is None
    assert summary["search_p50_ms"] is None


async def test_the_probe_times_each_marker_until_search_returns_it():
    searches: dict[str, int] = {}

    def answer(request):
        if request.method == "POST":
            return httpx.Response(200, json={"status": "queued"})
        word = request.url.params["q"]
        searches[word] = searches.get(word, 0) + 1
        # Each marker is found on the third search for it.
        return httpx.Response(200, json={"data": [{}] if searches[word] >= 3 else []})

    plan = ProbePlan(run="abc", markers=4, pace_s=0.001, poll_s=0.01, timeout_s=5)
    async with scripted(answer) as client:
        visibility = await probe_visibility(client, plan)
    assert searches == {plan.word(marker): 3 for marker in range(4)}
    assert len(visibility.seconds) == 4
    assert len(visibility.searches) == 12
    assert all(0.02 <= seconds < plan.timeout_s for seconds in visibility.seconds)
