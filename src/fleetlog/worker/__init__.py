"""The worker: moves accepted logs from the Redis shard streams into PostgreSQL."""
