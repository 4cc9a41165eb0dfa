"""Retention: rules by level and device prefix, passes that remove what they let go, archives."""
