"""notar.server: the Notary v1 trust server (HTTP API, validation, storage)."""
