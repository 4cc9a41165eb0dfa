"""CPU per log of each ingest protocol's own work, in one process: from the decoded request
body to the records the queue takes (decode, map, fleetlog's rules), for the bench's bodies.

    .venv/bin/python scripts/shipper_paths.py [--rounds N]

Each path runs on fresh bodies (protobuf wrappers are made on first access, as in a server),
best of N rounds, interleaved so that a busy moment costs every path alike. The HTTP stack and
the store, which every workload shares, are left out: this is where the protocols differ.
"""

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fleetlog.bench.workload import Workload, WorkloadName
from fleetlog.config import Settings
from fleetlog.event_time import EventWindow
from fleetlog.ingest import accept_records
from fleetlog.records import LogBatchIn
from fleetlog.shippers.elastic.documents import shipped
from fleetlog.shippers.elastic.ndjson import parse_bulk
from fleetlog.shippers.intake import Rules, Shipped
from fleetlog.shippers.loki import decode_push, map_streams
from fleetlog.shippers.otlp import Encoding, decode
from fleetlog.shippers.otlp_mapping import map_request

SETTINGS = Settings(_env_file=None)
WINDOW = EventWindow(SETTINGS.max_event_age, SETTINGS.max_event_skew)
RULES = {"max_line_bytes": SETTINGS.max_line_bytes}


def bodies(name: WorkloadName, count: int) -> list[bytes]:
    workload = Workload(
        name=name, run="paths", devices=100, batch=1000, gzip=False, started_ns=time.time_ns()
    )
    return [workload.body(request) for request in range(count)]


def bulk(body: bytes) -> int:
    bounds = WINDOW.at(datetime.now(UTC))
    batch = LogBatchIn.model_validate_json(body)
    return len(accept_records(batch.logs, bounds, lambda index: (index,)))


def sort(protocol: str, records: list[Shipped]) -> int:
    rules = Rules(WINDOW.at(datetime.now(UTC)), protocol=protocol, **RULES)
    return len(rules.sort(records).records)


def otlp(body: bytes) -> int:
    return sort("otlp", map_request(decode(body, Encoding.PROTOBUF)).shipped)


def loki(body: bytes) -> int:
    streams = decode_push(body, content_type="application/x-protobuf", limit=len(body) * 10)
    labels = SETTINGS.loki_device_labels
    return sort("loki", map_streams(streams, device_labels=labels, org_id="").shipped)


def es_bulk(body: bytes) -> int:
    records = [shipped(action) for action in parse_bulk(body, index=None)]
    return sort("es-bulk", [record for record in records if isinstance(record, Shipped)])


PATHS: dict[WorkloadName, Callable[[bytes], int]] = {
    "bulk": bulk,
    "otlp": otlp,
    "loki": loki,
    "es-bulk": es_bulk,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    made = {name: bodies(name, rounds) for name in PATHS}
    best = dict.fromkeys(PATHS, float("inf"))
    for round_ in range(rounds):
        for name, path in PATHS.items():
            started = time.process_time()
            logs = path(made[name][round_])
            best[name] = min(best[name], (time.process_time() - started) / logs * 1e6)
    for name, us in best.items():
        sys.stdout.write(f"{name:8s} {us:5.2f} µs per log ({us / best['bulk']:.2f}× bulk)\n")


if __name__ == "__main__":
    main()
