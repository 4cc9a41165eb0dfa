"""Live tail: one reader per process follows new logs and fans them out to its subscribers.

A source (`store.py` embedded: polls the SQLite `logs` table by id; `streams.py` pipeline:
XREAD on the shard streams) reads new logs in order; `hub.TailHub` offers each to every open
`Subscription`, whose plan filters it into a bounded buffer. The API only renders what a
subscription yields as Server-Sent Events.
"""
