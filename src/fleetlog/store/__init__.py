"""Where logs are kept: SQLite embedded, PostgreSQL in production, one query layer for both."""
