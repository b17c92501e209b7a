"""Compatibility shim, remove when no file imports it: the lab moved to the tests.lab package.

Import from :mod:`tests.lab` instead; its fixtures are registered by tests/conftest.py.
"""

from tests.lab import (
    DEFAULT_PASSPHRASES,
    LOG_LEVEL,
    LOOPBACK,
    PG_SUPERUSER,
    LabPKI,
    NotaryCLI,
    NotaryServer,
    PeerStartError,
    PostgresServer,
    Process,
    Registry,
    child_env,
    free_port,
    loopback_get,
    make_lab_pki,
    postgres_bindir,
    require_loopback,
    run_notary_server,
    run_postgres,
    run_registry,
)

__all__ = [
    "DEFAULT_PASSPHRASES",
    "LOG_LEVEL",
    "LOOPBACK",
    "PG_SUPERUSER",
    "LabPKI",
    "NotaryCLI",
    "NotaryServer",
    "PeerStartError",
    "PostgresServer",
    "Process",
    "Registry",
    "child_env",
    "free_port",
    "loopback_get",
    "make_lab_pki",
    "postgres_bindir",
    "require_loopback",
    "run_notary_server",
    "run_postgres",
    "run_registry",
]
