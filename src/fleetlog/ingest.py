"""Ingest: the one path every ingest route takes — accept validated logs, make them durable."""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from fleetlog.metrics import INGEST_BATCH_SIZE, LOGS_ACCEPTED
from fleetlog.queue import Queue
from fleetlog.records import LogIn, LogLevel, LogRecord

ACCEPTED_BY_LEVEL = {level.value: LOGS_ACCEPTED.labels(level.value) for level in LogLevel}


class Ingest:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def accept(self, logs: Sequence[LogIn]) -> tuple[list[str], datetime]:
        """Queue the logs durably; returns their message ids and the receive time."""
        received_at = datetime.now(UTC)
        records = [LogRecord.accept(log, received_at) for log in logs]
        message_ids = await self.queue.put(records)
        INGEST_BATCH_SIZE.observe(len(records))
        for level, count in Counter(record.level for record in records).items():
            ACCEPTED_BY_LEVEL[level].inc(count)
        return message_ids, received_at
