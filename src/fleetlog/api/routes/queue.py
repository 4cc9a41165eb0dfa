"""The queue console and dead letters of the Redis pipeline (admin): docs/operations.md.

Embedded, each request is committed before it is answered: there is no backlog, consumer or
dead letter to show, and every route answers 409.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, model_validator

from fleetlog.api.errors import documented
from fleetlog.api.security import AUTH_RESPONSES, require
from fleetlog.auth.principals import Scope
from fleetlog.errors import Conflict
from fleetlog.queue.console import NO_QUEUE, QueueConsole, QueueOut
from fleetlog.queue.dead_letters import (
    DeadLetters,
    DeadLetterShown,
    DeadLettersOut,
    ReplayedOut,
)
from fleetlog.queue.redis_streams import RedisStreamQueue


def redis_queue(request: Request) -> RedisStreamQueue:
    queue = request.app.state.services.queue
    if not isinstance(queue, RedisStreamQueue):
        raise Conflict(NO_QUEUE)
    return queue


def get_console(request: Request) -> QueueConsole:
    queue = redis_queue(request)
    return QueueConsole(queue.client, keys=queue.keys, shards=queue.shards)


def get_dead_letters(request: Request) -> DeadLetters:
    queue = redis_queue(request)
    return DeadLetters(queue.client, keys=queue.keys, shards=queue.shards)


ConsoleDep = Annotated[QueueConsole, Depends(get_console)]
DeadLettersDep = Annotated[DeadLetters, Depends(get_dead_letters)]
DeadId = Annotated[
    str,
    Path(
        alias="id",
        max_length=64,
        description="`<shard>-<ms>-<seq>`, as listed",
        examples=["2-1-0"],
    ),
]


class PurgedOut(BaseModel):
    purged: int


class ReplayIn(BaseModel):
    """Name the dead letters to replay, or ask for all of them."""

    ids: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=1000)
    all: bool = False

    @model_validator(mode="after")
    def one_way(self) -> "ReplayIn":
        if bool(self.ids) == self.all:
            raise ValueError("give either ids or all: true")
        return self


router = APIRouter(
    tags=["queue"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses={
        **AUTH_RESPONSES,
        **documented(
            {
                400: "A dead letter's id is malformed or names no shard",
                404: "No such dead letter",
                409: "Embedded fleetlog has no queue to inspect",
                503: "Redis cannot be reached",
            }
        ),
    },
)


@router.get("/api/admin/queue", response_model=QueueOut)
async def queue_status(console: ConsoleDep) -> QueueOut:
    """Per shard: backlog, pending entries, the oldest entry's age, consumers, dead letters and
    logs stored per second."""
    return await console.status()


@router.get("/api/admin/deadletters", response_model=DeadLettersOut)
async def list_dead_letters(
    dead: DeadLettersDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DeadLettersOut:
    """The oldest dead letters over every shard, and how many there are."""
    return await dead.oldest(limit=limit)


@router.get("/api/admin/deadletters/{id}", response_model=DeadLetterShown)
async def show_dead_letter(dead_id: DeadId, dead: DeadLettersDep) -> DeadLetterShown:
    """One dead letter: why it died, its deliveries and its records."""
    return await dead.show(dead_id)


@router.post("/api/admin/deadletters/replay", response_model=ReplayedOut)
async def replay_dead_letters(body: ReplayIn, dead: DeadLettersDep) -> ReplayedOut:
    """Put dead letters back onto their shard's stream, each once: one replayed already is
    listed as missing and stores nothing again."""
    if body.all:
        return await dead.replay_all()
    return await dead.replay(body.ids)


@router.delete("/api/admin/deadletters", response_model=PurgedOut)
async def purge_dead_letters(dead: DeadLettersDep) -> PurgedOut:
    """Drop every dead letter for good."""
    return PurgedOut(purged=await dead.purge())
