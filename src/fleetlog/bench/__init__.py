"""`fleetlog bench`: load a fleetlog server, then prove every accepted log stored exactly once."""
