"""What a webhook delivery sends: an Alertmanager (version 4) or Slack body, signed.

The signature is `X-Fleetlog-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`<t>.<body>` with the target's secret, as Stripe signs: a receiver recomputes it, compares in
constant time and refuses a `t` too far from its clock. `Idempotency-Key` is the
notification's key, the same on every retry, so a receiver can drop a duplicate.
"""

import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from fleetlog import __version__
from fleetlog.alerts.ledger import Outgoing

# Alertmanager's zero time: the end of an alert still firing.
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(moment: datetime | None) -> str:
    return ZERO_TIME if moment is None else moment.isoformat().replace("+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of the alert's labels, as Alertmanager gives one (16 hex digits)."""
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def group_key(labels: dict[str, str]) -> str:
    inner = ", ".join(
        f"{name}={value!r}".replace("'", '"') for name, value in sorted(labels.items())
    )
    return f"{{}}:{{{inner}}}"


def alertmanager_body(out: Outgoing, *, external_url: str) -> dict[str, Any]:
    generator = f"{external_url}/api/logs?{urlencode({'q': out.annotations.get('query', '')})}"
    group_labels = {"alertname": out.rule}
    return {
        "version": "4",
        "groupKey": group_key(out.labels),
        "truncatedAlerts": 0,
        "status": out.status,
        "receiver": out.target,
        "groupLabels": group_labels,
        "commonLabels": out.labels,
        "commonAnnotations": out.annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": out.status,
                "labels": out.labels,
                "annotations": out.annotations,
                "startsAt": rfc3339(out.starts_at),
                "endsAt": rfc3339(out.ends_at),
                "generatorURL": generator if external_url else "",
                "fingerprint": fingerprint(out.labels),
            }
        ],
    }


def slack_body(out: Outgoing) -> dict[str, Any]:
    where = f" {out.group}" if out.group else ""
    summary = out.annotations.get("summary", "")
    return {"text": f"[{out.status.upper()}] {out.rule}{where}: {summary}"}


def body_of(out: Outgoing, *, external_url: str) -> bytes:
    if out.format == "slack":
        return orjson.dumps(slack_body(out))
    return orjson.dumps(alertmanager_body(out, external_url=external_url))


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def headers_of(out: Outgoing, *, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"fleetlog/{__version__}",
        "Idempotency-Key": out.key,
        "X-Fleetlog-Signature": signature(out.secret, timestamp=timestamp, body=body),
    }
