"""The lab's pytest fixtures; tests/conftest.py registers them (``pytest_plugins``) for the whole suite.

Session fixtures start one process for the whole run: give each test its own repository (GUN) or database.
Do not import these functions into a test module or a conftest: that would define the session fixtures a
second time and start a second process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.notar import NotarServer, run_notar_server
from tests.lab.notary import NotaryCLI, NotaryServer, run_notary_server
from tests.lab.pki import LabPKI, make_lab_pki
from tests.lab.postgres import PostgresServer, run_postgres
from tests.lab.registry import Registry, run_registry


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPKI:
    """CA + server leaf (P-256) for 127.0.0.1 / localhost, in a session tmp dir."""
    return make_lab_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def notary_server(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotaryServer]:
    """One notary-server for the session; its memory storage is shared, so use a distinct GUN per test."""
    with run_notary_server(lab_pki, tmp_path_factory.mktemp("notary-server")) as server:
        yield server


@pytest.fixture
def notary_server_with_signer(lab_pki: LabPKI, tmp_path: Path) -> Iterator[NotaryServer]:
    """A fresh notary-server + notary-signer (gRPC, mutual TLS) for this test, as deployed (~0.35 s to start).

    ``.signer`` is the :class:`NotarySigner`; both are stopped by PID after the test.
    """
    with run_notary_server(lab_pki, tmp_path / "notary-server-signer", signer=True) as server:
        yield server


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One distribution registry for the session (plain HTTP, filesystem storage, delete enabled)."""
    with run_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def notary_cli(notary_server: NotaryServer, tmp_path: Path) -> NotaryCLI:
    """The notary CLI against ``notary_server`` with a fresh trust dir (and HOME) for this test."""
    return NotaryCLI(notary_server.url, notary_server.ca, tmp_path / "trust", home=tmp_path / "home")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; give each test its own database (``postgres_database``)."""
    with run_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """URL (``postgresql://…``) of a fresh, empty database ``test_<uuid>``; dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def notar_server(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotarServer]:
    """One `notar server` (TLS, SQLite) for the session; use a distinct GUN per test."""
    with run_notar_server(lab_pki, tmp_path_factory.mktemp("notar-server")) as server:
        yield server


@pytest.fixture
def notar_notary_cli(notar_server: NotarServer, tmp_path: Path) -> NotaryCLI:
    """The Go notary CLI against `notar server`, with a fresh trust dir."""
    return NotaryCLI(notar_server.url, notar_server.ca, tmp_path / "trust", home=tmp_path / "home")
