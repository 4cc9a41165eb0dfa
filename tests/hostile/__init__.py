"""Hostile probes: real sockets against real `fleetlog` processes, one module per kind of hole."""
