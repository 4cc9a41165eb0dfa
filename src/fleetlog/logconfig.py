"""Process-wide logging as one `dictConfig`, the same in every process: the CLI's commands, and
each server process uvicorn starts (it applies `log_config` in the children it spawns).

Console lines for a person, or one JSON object per line for a collector. A record may carry
`fields` (a dict, as the access log's do): JSON lines hold them as keys of their own, console
lines have them in the message already.
"""

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(fmt: Literal["console", "json"], level: str) -> dict[str, Any]:
    """The `dictConfig` of every fleetlog process; uvicorn's loggers write through the root's
    handler, so their lines have the same shape as fleetlog's."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if fmt == "json" else {"format": CONSOLE_FORMAT}
    )
    inherit: dict[str, Any] = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"fleetlog": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "fleetlog",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": inherit,
            "uvicorn.error": inherit,
            # fleetlog writes its own access log (api/middleware.py).
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(fmt: Literal["console", "json"], level: str) -> None:
    logging.config.dictConfig(logging_config(fmt, level))
