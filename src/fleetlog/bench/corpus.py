"""The logs the query workload seeds: a fleet's week, deterministic from a seed.

The logs of request r are a function of (seed, r) alone, so load processes can each build
their share of the requests and the tests can recompute any of them. A log has

- a device among 1,000 (`cam-0001` … `therm-0200`), a few of them much noisier than the rest;
- a level, mostly DEBUG and INFO, few ERROR, very few CRITICAL;
- a message: a template of the trade (`valve stuck on line 3`) and filler words drawn from a
  Zipf vocabulary of about 3,000 words, the trade's words first;
- `log_data` with `site` (a few sites), `temp_c` (a number), `ok` (a boolean), `line`;
- an event time spread evenly over the 7 days before `anchor`.

Rare words are placed, not drawn: each of `RARE_WORDS` words is in 0.001 % of the logs (at
least `RARE_MIN` of them, so small runs have an answer), at event times evenly spaced over
the week. Every rare word thus has the same, known number of logs in any trailing window.
"""

import gzip
import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from itertools import accumulate
from typing import Any

import orjson

SPAN_S = 7 * 86_400.0
DEVICE_PREFIXES = ("cam", "pump", "valve", "gw", "therm")
DEVICES_PER_PREFIX = 200
LEVEL_WEIGHTS = {"DEBUG": 25.0, "INFO": 60.0, "WARNING": 10.0, "ERROR": 4.5, "CRITICAL": 0.5}
SITE_WEIGHTS = {"north": 40.0, "south": 25.0, "east": 15.0, "west": 12.0, "harbor": 8.0}
TEMPLATES = (
    "pump {n} pressure high",
    "valve stuck on line {n}",
    "sensor {n} reading {f} out of range",
    "connection lost to gateway {n} after {n} retries",
    "battery low at {n} percent",
    "motor {n} speed {n} rpm",
    "camera frame dropped at {n} fps",
    "firmware update {n}.{n}.{n} started",
    "heartbeat ok",
    "disk full on volume {n}",
)
# Adjacent word pairs of the templates: the phrases the query mix looks for.
PHRASES = (
    "valve stuck",
    "pressure high",
    "connection lost",
    "frame dropped",
    "battery low",
    "disk full",
)
TRADE_WORDS = (
    "sensor pump valve pressure temperature line motor reading high low stuck open closed "
    "error connection lost retry battery level door camera frame dropped network timeout "
    "firmware update started stopped heartbeat alarm threshold exceeded restored voltage "
    "current fan speed flow rate tank filter calibration signal weak gateway upload disk full "
    "memory cpu restart config loaded"
).split()
VOCABULARY_SIZE = 3_000
ZIPF_EXPONENT = 1.1
FILLER_WORDS = (2, 8)
CONSONANTS = "bdfgklmnprstv"
VOWELS = "aeiou"
RARE_WORDS = 20
RARE_SHARE = 1e-5
RARE_MIN = 7
# Mild skew: the noisiest device sends about 60 times as many logs as the quietest.
DEVICE_SKEW = 0.6


def pseudo_words(rng: random.Random, count: int, *, suffix: str = "") -> list[str]:
    """`count` distinct made-up words of two or three syllables (letters only)."""
    found: dict[str, None] = {}
    while len(found) < count:
        syllables = rng.randint(2, 3)
        word = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))
        found[word + suffix] = None
    return list(found)


def vocabulary(seed: int) -> list[str]:
    """The trade's words, then made-up ones: the Zipf ranks, most frequent first."""
    made_up = pseudo_words(random.Random(f"vocabulary:{seed}"), VOCABULARY_SIZE)
    trade = set(TRADE_WORDS)
    return TRADE_WORDS + [w for w in made_up if w not in trade][: VOCABULARY_SIZE - len(trade)]


def cumulative(weights: list[float]) -> list[float]:
    return list(accumulate(weights))


LEVELS = list(LEVEL_WEIGHTS)
LEVEL_CUMULATIVE = cumulative(list(LEVEL_WEIGHTS.values()))
SITES = list(SITE_WEIGHTS)
SITE_CUMULATIVE = cumulative(list(SITE_WEIGHTS.values()))


def device_ids() -> list[str]:
    return [
        f"{prefix}-{number:04d}"
        for prefix in DEVICE_PREFIXES
        for number in range(1, DEVICES_PER_PREFIX + 1)
    ]


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """`logs` logs of a fleet's week before `anchor` (epoch seconds), cut in `batch`-log
    requests; with `live`, logs without event times (stamped when received) and without rare
    words, for the load that runs beside the visibility probe."""

    seed: int
    logs: int
    anchor: float
    batch: int = 1000
    gzip: bool = True
    live: bool = False
    path: str = "/api/logs/batch"
    content_type: str = "application/json"

    @cached_property
    def vocabulary(self) -> list[str]:
        return vocabulary(self.seed)

    @cached_property
    def word_weights(self) -> list[float]:
        return cumulative([1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(VOCABULARY_SIZE)])

    @cached_property
    def devices(self) -> list[str]:
        ordered = device_ids()
        random.Random(f"devices:{self.seed}").shuffle(ordered)
        return ordered

    @cached_property
    def device_weights(self) -> list[float]:
        return cumulative([1 / (rank + 1) ** DEVICE_SKEW for rank in range(len(self.devices))])

    @cached_property
    def rare_words(self) -> list[str]:
        return pseudo_words(random.Random(f"rare:{self.seed}"), RARE_WORDS, suffix="qz")

    @cached_property
    def rare_per_word(self) -> int:
        return max(RARE_MIN, round(self.logs * RARE_SHARE))

    @cached_property
    def rare_stride(self) -> int:
        return max(self.logs // (RARE_WORDS * self.rare_per_word), 1)

    def days(self) -> list[date]:
        """The UTC days the corpus's event times fall on, oldest first."""
        first = datetime.fromtimestamp(self.anchor - SPAN_S, UTC).date()
        last = datetime.fromtimestamp(self.anchor, UTC).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def rare_in_window(self, seconds: float) -> int:
        """Logs of each rare word with an event time in the last `seconds` before the anchor."""
        spacing = SPAN_S / self.rare_per_word
        return sum(1 for m in range(self.rare_per_word) if (m + 0.5) * spacing < seconds)

    def rare_slot(self, number: int) -> tuple[str, float] | None:
        """(rare word, age in seconds) when log `number` is one of a rare word's logs."""
        if self.live or number % self.rare_stride != self.rare_stride // 2:
            return None
        slot = number // self.rare_stride
        if slot >= RARE_WORDS * self.rare_per_word:
            return None
        occurrence, word = divmod(slot, RARE_WORDS)
        return self.rare_words[word], (occurrence + 0.5) * SPAN_S / self.rare_per_word

    def make_log(self, number: int, rng: random.Random) -> dict[str, Any]:
        level = rng.choices(LEVELS, cum_weights=LEVEL_CUMULATIVE)[0]
        count = rng.randint(*FILLER_WORDS)
        words = rng.choices(self.vocabulary, cum_weights=self.word_weights, k=count)
        template = rng.choice(TEMPLATES)
        message = fill(template, rng)
        age = rng.random() * SPAN_S
        rare = self.rare_slot(number)
        if rare is not None:
            words.insert(rng.randrange(len(words) + 1), rare[0])
            age = rare[1]
        device = bisect_right(self.device_weights, rng.random() * self.device_weights[-1])
        log: dict[str, Any] = {
            "device_id": self.devices[device],
            "log_level": level,
            "message": f"{message} {' '.join(words)}",
            "log_data": {
                "site": rng.choices(SITES, cum_weights=SITE_CUMULATIVE)[0],
                "temp_c": round(rng.gauss(24.0, 8.0), 1),
                "ok": level in ("DEBUG", "INFO") and rng.random() < 0.95,
                "line": rng.randint(1, 12),
            },
        }
        if not self.live:
            log["timestamp"] = round(self.anchor - age, 6)
        return log

    def log_range(self, request: int) -> range:
        """The numbers of the logs request `request` carries."""
        start = request * self.batch
        return range(start, min(start + self.batch, self.logs))

    def batch_logs(self, request: int) -> list[dict[str, Any]]:
        """The logs of request `request`, as sent (one RNG per request, not per log: cheaper)."""
        rng = random.Random(f"request:{self.seed}:{self.live}:{request}")
        return [self.make_log(number, rng) for number in self.log_range(request)]

    def body(self, request: int) -> bytes:
        payload = orjson.dumps({"logs": self.batch_logs(request)})
        return gzip.compress(payload, 1, mtime=0) if self.gzip else payload

    @cached_property
    def requests(self) -> int:
        return math.ceil(self.logs / self.batch)


def fill(template: str, rng: random.Random) -> str:
    """A template with each `{n}` a small number and each `{f}` a reading."""
    parts = template.split("{n}")
    filled = parts[0]
    for part in parts[1:]:
        filled += str(rng.randint(1, 64)) + part
    return filled.replace("{f}", f"{rng.uniform(-40, 140):.1f}")
