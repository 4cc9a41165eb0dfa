"""What the webhook job queue holds, read from dramatiq's keys: `GET /api/admin/jobs`.

dramatiq-dashboard, which would show this at `/drama`, requires dramatiq < 2 and redis-py
< 5; fleetlog runs dramatiq 2 and redis-py 8, so the same view is served as JSON here.
"""

from datetime import UTC, datetime
from typing import Any

from dramatiq.message import Message
from pydantic import BaseModel, Field

from fleetlog.alerts.jobs import QUEUE
from fleetlog.keys import Keys
from fleetlog.queue.redis_streams import translated
from fleetlog.redis_client import Client

LAST = 10


class JobOut(BaseModel):
    message_id: str
    actor: str
    args: list[Any]
    retries: int
    enqueued_at: datetime
    eta: datetime | None = Field(None, description="When a delayed job is due")
    failed_at: datetime | None = Field(None, description="When it was dead-lettered")
    error: str | None = Field(None, description="The last line of its last failure")


class QueueOut(BaseModel):
    name: str
    queued: int = Field(description="Waiting for a worker")
    delayed: int = Field(description="Waiting for their retry's backoff to pass")
    dead: int = Field(description="Dead-lettered after their last retry (kept 7 days)")
    last_queued: list[JobOut]
    last_delayed: list[JobOut]
    last_dead: list[JobOut]


class JobsOut(BaseModel):
    queues: list[QueueOut]


def moment(milliseconds: Any) -> datetime | None:
    return None if milliseconds is None else datetime.fromtimestamp(int(milliseconds) / 1000, UTC)


def job_out(raw: bytes, *, failed_at: float | None = None) -> JobOut:
    message = Message.decode(raw)
    trace = str(message.options.get("traceback") or "").strip().splitlines()
    return JobOut(
        message_id=message.message_id,
        actor=message.actor_name,
        args=list(message.args),
        retries=int(message.options.get("retries", 0)),
        enqueued_at=moment(message.message_timestamp) or datetime.now(UTC),
        eta=moment(message.options.get("eta")),
        failed_at=moment(failed_at),
        error=trace[-1] if trace else None,
    )


class JobsView:
    """Counts and the last messages of the webhook queue, its delayed and its dead."""

    def __init__(self, redis: Client, *, keys: Keys) -> None:
        self.redis = redis
        self.prefix = f"{keys.jobs}:{QUEUE}"

    async def queues(self) -> JobsOut:
        with translated("read the job queue"):
            return JobsOut(queues=[await self._queue()])

    async def _queue(self) -> QueueOut:
        queue, delayed, dead = self.prefix, f"{self.prefix}.DQ", f"{self.prefix}.XQ"
        redis: Any = self.redis
        queued_ids = await redis.lrange(queue, -LAST, -1)
        _, delayed_found = await redis.hscan(f"{delayed}.msgs", count=LAST)
        dead_ids: list[tuple[bytes, float]] = await redis.zrevrange(
            dead, 0, LAST - 1, withscores=True
        )
        queued = await self._messages(f"{queue}.msgs", queued_ids)
        dead_messages = await self._messages(f"{dead}.msgs", [each for each, _ in dead_ids])
        return QueueOut(
            name=QUEUE,
            queued=await redis.llen(queue),
            delayed=await redis.hlen(f"{delayed}.msgs"),
            dead=await redis.zcard(dead),
            last_queued=[job_out(raw) for raw in queued if raw is not None],
            last_delayed=[job_out(raw) for raw in list(delayed_found.values())[:LAST]],
            last_dead=[
                job_out(raw, failed_at=score)
                for raw, (_, score) in zip(dead_messages, dead_ids, strict=True)
                if raw is not None
            ],
        )

    async def _messages(self, key: str, ids: list[bytes]) -> list[bytes | None]:
        """The messages of `ids` (None for one acknowledged meanwhile)."""
        if not ids:
            return []
        redis: Any = self.redis
        found: list[bytes | None] = await redis.hmget(key, ids)
        return found
