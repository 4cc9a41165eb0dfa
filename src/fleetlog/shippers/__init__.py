"""The shippers' protocols (docs/protocols.md): Loki push, OTLP/HTTP logs, Elasticsearch bulk,
syslog and GELF, each mapped onto fleetlog's one log record and taken through `Ingest.ship`."""
