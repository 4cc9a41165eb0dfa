"""The terminal client's side of the API: search pages, the live tail over Server-Sent Events,
and how logs are printed. Used by `fleetlog query` and `fleetlog tail` (cli_client.py)."""
