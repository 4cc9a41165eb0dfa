"""Search: the query language's grammar → a plan (a small tree of nodes) → a predicate in
Python (tail) or a WHERE clause per store (search, counts). Routes, the CLI and tail take a
plan, never a raw `q` string."""
