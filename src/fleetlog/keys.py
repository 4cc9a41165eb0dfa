"""Every Redis key, stream and group name of fleetlog, derived from one namespace.

Each shard's keys share a hash tag (`{s<n>}`), so the scripts that touch a stream and its
counters together stay valid on a Redis Cluster, where the shards spread over the masters;
every script's keys hash to one slot (tests/cluster/test_scripts.py). With the default
namespace `fleetlog`:

| key                          | type    | what                                                    |
|------------------------------|---------|---------------------------------------------------------|
| `fleetlog:{s<n>}:stream`     | stream  | accepted batches of shard n: fields `n` (logs), `b`     |
|                              |         | (`records.encode_records`); deleted once stored         |
| `fleetlog:{s<n>}:backlog`    | string  | logs in shard n's stream not yet stored (INCRBY on      |
|                              |         | XADD, DECRBY on XDEL, in the same scripts)              |
| `fleetlog:{s<n>}:dead`       | stream  | dead letters of shard n: `id`, `error`, `deliveries`,   |
|                              |         | `reason`, `n`, `b` (the original entry); left only by   |
|                              |         | replay or purge (queue/dead_letters.py)                 |
| `fleetlog:{s<n>}:stored`     | string  | logs acknowledged as stored from shard n, ever (INCRBY  |
|                              |         | in the acknowledging script)                            |
| `fleetlog:{s<n>}:stored:at`  | list    | samples `<ms> <stored>` of that total, newest first,    |
|                              |         | pushed by the workers' reclaim ticks; capped            |
| `fleetlog:{d:<dev>}:ver`     | string  | the device's version: INCR after its logs were committed|
|                              |         | (see `cache.py`)                                        |
| `fleetlog:{day:<date>}:ver`  | string  | the version of an event day (YYYY-MM-DD, UTC): INCR     |
|                              |         | after logs of that day were committed                   |
| `fleetlog:cache:gen`         | string  | the retention generation: INCR after retention dropped  |
|                              |         | logs                                                    |
| `fleetlog:{d:<dev>}:ans:<n>` | string  | the cached first page of GET /api/logs/<dev> for limit  |
|                              |         | n, `<gen>.<version>\n<page>`; TTL. In the cache Redis   |
|                              |         | when there is one, as are the answers' byte counts,     |
|                              |         | the stats and the search pages below                    |
| `fleetlog:{cache}:bytes:<w>` | string  | bytes of answers kept in TTL window w (shared Redis)    |
| `fleetlog:cache:stats`       | string  | the cached answer of GET /api/stats, with its TTL       |
| `fleetlog:cache:q:<digest>`  | string  | a cached search page of a closed time range, or a past  |
|                              |         | day's counts: `<gen>.<day versions>\n<answer>`; TTL     |
| `fleetlog:rl:<subject>`      | string  | GCRA rate-limit state of `key:<id>`, `user:<id>` or     |
|                              |         | `address:<ip>`: its TAT in µs; expires when idle        |
| `fleetlog:idem:<digest>`     | string  | an idempotency key (an Elasticsearch `_id`): the token  |
|                              |         | of the request storing it (short TTL), then `s` once    |
|                              |         | stored (TTL FLEETLOG_IDEMPOTENCY_TTL); idempotency/     |
| `fleetlog:{s<n>}:idem:<name>`| hash    | an Idempotency-Key of a request whose entry goes to     |
|                              |         | shard n: claimed, queued (marked by the enqueue script  |
|                              |         | with its XADD), answered; idempotency/redis_answers.py  |
| group `fleetlog-workers`     | group   | the consumer group reading every shard's stream         |
| `fleetlog:{alerts}:lock`     | string  | the alert evaluator's lock: `<owner> <token>`; PX TTL   |
| `fleetlog:{alerts}:fence`    | string  | the last fencing token handed out (INCR); alerts/lock.py|
| `fleetlog-jobs:*`            | dramatiq| webhook jobs: dramatiq's own keys under this namespace  |
|                              |         | (`<queue>` list, `.msgs`, `.DQ` delayed, `.XQ` dead)    |
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = "fleetlog"

    @property
    def group(self) -> str:
        return f"{self.namespace}-workers"

    def stream(self, shard: int) -> str:
        return f"{self.namespace}:{{s{shard}}}:stream"

    def backlog(self, shard: int) -> str:
        return f"{self.namespace}:{{s{shard}}}:backlog"

    def dead(self, shard: int) -> str:
        return f"{self.namespace}:{{s{shard}}}:dead"

    def stored(self, shard: int) -> str:
        return f"{self.namespace}:{{s{shard}}}:stored"

    def stored_samples(self, shard: int) -> str:
        return f"{self.namespace}:{{s{shard}}}:stored:at"

    def cache_version(self, device_id: str) -> str:
        return f"{self.namespace}:{{d:{device_id}}}:ver"

    def cache_day_version(self, day: str) -> str:
        return f"{self.namespace}:{{day:{day}}}:ver"

    def cache_of_days(self, digest: str) -> str:
        return f"{self.namespace}:cache:q:{digest}"

    def cache_generation(self) -> str:
        return f"{self.namespace}:cache:gen"

    def cache_answer(self, device_id: str, limit: int) -> str:
        return f"{self.namespace}:{{d:{device_id}}}:ans:{limit}"

    def cache_bytes(self, window: int) -> str:
        return f"{self.namespace}:{{cache}}:bytes:{window}"

    def cache_stats(self) -> str:
        return f"{self.namespace}:cache:stats"

    def rate_limit(self, subject: str) -> str:
        return f"{self.namespace}:rl:{subject}"

    def idempotency(self, digest: str) -> str:
        return f"{self.namespace}:idem:{digest}"

    def alert_lock(self) -> str:
        return f"{self.namespace}:{{alerts}}:lock"

    def alert_fence(self) -> str:
        return f"{self.namespace}:{{alerts}}:fence"

    @property
    def jobs(self) -> str:
        """The namespace of dramatiq's keys."""
        return f"{self.namespace}-jobs"

    def request_key(self, shard: int, name: str) -> str:
        return f"{self.namespace}:{{s{shard}}}:idem:{name}"
