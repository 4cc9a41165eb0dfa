"""`fleetlog bench --workload query` end to end (`pytest -m bench`): the JSON's shape, and
rows that are the corpus's own answers, recomputed here with the Python matcher."""

from statistics import median_low

import pytest

from fleetlog.bench.corpus import Corpus
from fleetlog.bench.queries import DAY_S, PAGE, QUERY_NAMES, QueryMix
from fleetlog.search.grammar import parse
from fleetlog.search.matcher import LogFields, predicate
from tests.bench.runs import run_bench

pytestmark = pytest.mark.bench

LOGS, RUNS, WARMUP = 2000, 5, 5


def fields(log):
    keys = ("device_id", "log_level", "message", "log_data")
    return LogFields(**{key: log[key] for key in keys})


def matcher(path, params):
    """What a query's request asks for, as a predicate over a log's fields."""
    if "q" in params:
        return predicate(parse(params["q"]))
    device = path.rsplit("/", 1)[1]
    return lambda log: log.device_id == device


def expected_rows(mix, name):
    """The median page size of a query's measured runs, from the corpus itself."""
    corpus = mix.corpus
    logs = [log for request in range(corpus.requests) for log in corpus.batch_logs(request)]
    pages = []
    for run in range(WARMUP, WARMUP + RUNS):
        path, params = mix.request(name, run)
        matches = matcher(path, params)
        since = corpus.anchor - DAY_S if "since" in params else 0
        found = sum(1 for log in logs if log["timestamp"] >= since and matches(fields(log)))
        pages.append(min(found, int(PAGE)))
    return median_low(pages)


@pytest.mark.parametrize("stack", ["embedded", "redis-postgres"])
def test_query_workload_answers_with_the_corpus_rows(stack):
    summary = run_bench(
        "--workload",
        "query",
        "--spawn",
        stack,
        "--logs",
        str(LOGS),
        "--runs",
        str(RUNS),
        "--markers",
        "20",
        timeout=600,
    )
    assert summary["logs"] == LOGS
    assert summary["seeded_by"] == "ingest"
    assert summary["store"] == ("sqlite" if stack == "embedded" else "postgresql")
    assert summary["counted_by_api"] in (None, LOGS)
    queries = summary["queries"]
    assert list(queries) == list(QUERY_NAMES)
    for stats in queries.values():
        assert stats.keys() >= {"p50_ms", "p95_ms", "p99_ms", "rows"}
        assert stats["errors"] == {}
    corpus = Corpus(seed=summary["corpus"]["seed"], logs=LOGS, anchor=summary["corpus"]["anchor"])
    mix = QueryMix(corpus)
    assert queries["rare_word_24h"]["rows"] == corpus.rare_in_window(DAY_S) >= 1
    for name in ("device_newest", "common_word_first_page", "phrase_24h", "attr_filter_24h"):
        assert queries[name]["rows"] == expected_rows(mix, name), name
    assert queries["counts_by_level_24h_1m"]["rows"] > 0
    visibility = summary["visibility"]
    assert visibility["markers"] == 20
    assert visibility["not_found"] == 0
    assert summary["visibility_p99_ms"] is not None
