"""fleetlog's production topology without Docker: nginx in front of several API processes,
plus workers, supervised by `fleetlog up` (deploy/ holds the same for systemd)."""
