"""What a bench run sends: unique logs, numbered so the store can be audited afterwards.

Every log of a run is identified by (run, device, sequence): the run is in the device id and in
`log_data`, the sequence in `log_data` and in the message. One iteration sends
`LOGS_PER_DEVICE` logs for every device, interleaved across devices, as the reference's stress
test does (100 devices × 100 logs). Numbering the logs of a run in sending order,

    log g  is  device g % devices, sequence g // devices,

so request j carries the contiguous logs [j·batch, (j+1)·batch) of its iteration, and the set
of logs a run must have stored is a union of ranges (see `verify.py`).
"""

import gzip
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from fleetlog.bench.shippers import WIRES, BenchLog, Wire

WorkloadName = Literal["reference", "bulk", "otlp", "loki", "es-bulk"]

LOGS_PER_DEVICE = 100
LEVELS = (b"DEBUG", b"INFO", b"WARNING", b"ERROR", b"CRITICAL")
LOG_TEMPLATE = (
    b'{"device_id":"%s-dev-%04d","log_level":"%s",'
    b'"message":"sensor reading out of range (run %s, #%d)",'
    b'"log_data":{"run":"%s","seq":%d,"value":%.1f}}'
)
# Level 1 keeps the load generator cheap; inflating costs the server about the same at any level.
GZIP_LEVEL = 1


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The logs of one run and how they are cut into request bodies."""

    name: WorkloadName
    run: str
    devices: int
    batch: int
    gzip: bool
    # Event times of the shipper workloads, which send them as shippers do: log g happened g µs
    # after this (epoch ns); the reference and bulk workloads send none, as the reference does.
    started_ns: int = 0

    @cached_property
    def wire(self) -> Wire | None:
        """How a shipper workload's requests go; None for the reference API's JSON batch."""
        return WIRES.get(self.name)

    @property
    def path(self) -> str:
        return "/api/logs/batch" if self.wire is None else self.wire.path

    @property
    def content_type(self) -> str:
        return "application/json" if self.wire is None else self.wire.content_type

    @cached_property
    def logs_per_iteration(self) -> int:
        return self.devices * LOGS_PER_DEVICE

    @cached_property
    def requests_per_iteration(self) -> int:
        return math.ceil(self.logs_per_iteration / self.batch)

    @cached_property
    def run_id(self) -> bytes:
        return self.run.encode()

    def device_id(self, device: int) -> str:
        return f"{self.run}-dev-{device:04d}"

    def device_ids(self) -> list[str]:
        return [self.device_id(device) for device in range(self.devices)]

    def log_range(self, request: int) -> range:
        """The numbers g of the logs request `request` carries."""
        iteration, index = divmod(request, self.requests_per_iteration)
        start = iteration * self.logs_per_iteration
        first = start + index * self.batch
        return range(first, min(first + self.batch, start + self.logs_per_iteration))

    def log_number(self, device: int, sequence: int) -> int:
        return sequence * self.devices + device

    def body(self, request: int) -> bytes:
        """The request body of request `request`, gzipped when the workload says so."""
        numbers = self.log_range(request)
        if self.wire is not None:
            payload = self.wire.encode([self.shipped_log(number) for number in numbers])
        else:
            logs = b",".join(self.encode_log(number) for number in numbers)
            payload = b'{"logs":[' + logs + b"]}"
        return gzip.compress(payload, GZIP_LEVEL, mtime=0) if self.gzip else payload

    def encode_log(self, number: int) -> bytes:
        # A bytes template, not json.dumps: it keeps `--duration` runs, which encode as they
        # go, cheap. The run id is hex and every other value a number, so nothing needs escaping.
        sequence, device = divmod(number, self.devices)
        level = LEVELS[number % len(LEVELS)]
        value = number % 1000 / 10
        return LOG_TEMPLATE % (
            self.run_id,
            device,
            level,
            self.run_id,
            sequence,
            self.run_id,
            sequence,
            value,
        )

    def shipped_log(self, number: int) -> BenchLog:
        sequence, device = divmod(number, self.devices)
        return BenchLog(
            device_id=self.device_id(device),
            level=LEVELS[number % len(LEVELS)].decode(),
            message=f"sensor reading out of range (run {self.run}, #{sequence})",
            run=self.run,
            seq=sequence,
            value=number % 1000 / 10,
            ts_ns=self.started_ns + number * 1000,
        )
