"""Elasticsearch's bulk API (docs/protocols.md): NDJSON action and source lines read into
actions (`ndjson`), sources mapped onto fleetlog's record (`documents`), written with `_id` as an
idempotency key (`bulk`) and answered item by item in Elasticsearch's shape (`items`); and what
its clients ask before they send (`handshake`)."""
