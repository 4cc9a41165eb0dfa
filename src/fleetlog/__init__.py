"""fleetlog: high-throughput log collection that never loses an accepted log."""

__version__ = "0.1.0"
