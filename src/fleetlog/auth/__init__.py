"""Who may do what: API keys for devices and services, users with roles, JWTs for people."""
