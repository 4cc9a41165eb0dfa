"""Alert rules evaluated over the logs, and their notifications delivered by webhook."""
