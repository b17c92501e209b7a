"""The lab: real processes on 127.0.0.1 for the tests and the benchmarks (bench/).

Every peer runs from the Debian packages ``scripts/install-peers.sh`` installs, on a free loopback port, with a
minimal environment (no proxies, no real HOME), and is stopped by PID when its ``with`` block ends. A missing
program is an error (:class:`PeerStartError`, naming the install script), never a skip.

In a test, ask for a fixture by name (tests/conftest.py registers :mod:`tests.lab.fixtures`)::

    @pytest.mark.peers
    def test_round_trip(notar_server: NotarServer, registry: Registry) -> None:
        gun = f"{registry.host}/team/app-{uuid.uuid4().hex[:8]}"  # session peers: one GUN per test
        ...

    lab_pki            (session)  CA + server leaf for 127.0.0.1 / localhost       -> LabPKI
    notary_server      (session)  Go notary-server, TLS, memory storage            -> NotaryServer
    notary_cli         (function) Go notary CLI against it, fresh trust dir        -> NotaryCLI
    notary_server_with_signer (function) a fresh notary-server + notary-signer     -> NotaryServer (.signer)
    registry           (session)  docker-registry, plain HTTP                      -> Registry
    postgres_server    (session)  PostgreSQL in a temp dir, trust auth             -> PostgresServer
    postgres_database  (function) URL of a fresh database on it, dropped afterwards -> str
    notar_server       (session)  `notar server`, TLS, SQLite                      -> NotarServer
    notar_notary_cli   (function) Go notary CLI against `notar server`             -> NotaryCLI

For a peer of your own (other flags, a private instance, a benchmark), use the context manager behind the
fixture; it takes a work directory for its config, data and log::

    pki = make_lab_pki(tmp_path / "pki")
    with run_notar_server(pki, tmp_path / "server", extra_args=("--workers", "2")) as server:
        status, _ = loopback_get(f"{server.url}/_notary_server/health", ca=server.ca)

    run_notary_server(pki, dir)        run_registry(dir)         run_postgres(dir)
    run_notary_server(pki, dir, signer=True)   (+ notary-signer over gRPC mTLS; run_notary_signer alone)
    run_notar_server(pki | None, dir)  run_gateway(dir, upstream=..., trust_server=..., ca=...)
    run_moto(dir, **env)
    run_kms(dir)                       (tests.lab.kms: moto with an AWS-faithful KMS Sign, call log, faults)

Something new to start: ``with Process(name, argv, log=workdir / "x.log", port=port, env=child_env(...)):``
(``port`` from :func:`free_port`, passed in *argv*) waits until the port accepts connections and fails fast
with the tail of the log; on exit it sends SIGTERM, then SIGKILL, to its own process group only, and the
child dies with its parent anyway (PR_SET_PDEATHSIG). Pass every URL through :func:`require_loopback`.

Modules: process (Process, free_port, child_env, loopback helpers), pki (make_lab_pki, issue_leaf), notary
(notary-server, notary-signer, NotaryCLI), docker (DockerCLI: `docker trust` without a daemon), registry,
postgres, notar (`notar server`), gateway (`notar gateway`), moto, fixtures (the pytest fixtures).
Knobs: ``NOTAR_PEERS_LOG_LEVEL`` (default ``error``) sets the peers' log level; each peer's log is a file in
its work directory, and its tail is in the error when the peer fails to start. ``NOTAR_PG_BINDIR`` picks the
PostgreSQL server binaries (default: the newest /usr/lib/postgresql/*/bin).
"""

from tests.lab.docker import DockerCLI
from tests.lab.gateway import GATEWAY_CONFIG, Gateway, run_gateway
from tests.lab.moto import MotoServer, run_moto
from tests.lab.notar import NotarServer, run_notar_server
from tests.lab.notary import (
    DEFAULT_PASSPHRASES,
    NotaryCLI,
    NotaryServer,
    NotarySigner,
    run_notary_server,
    run_notary_signer,
)
from tests.lab.pki import LabPKI, issue_leaf, make_lab_pki
from tests.lab.postgres import PG_SUPERUSER, PostgresServer, postgres_bindir, run_postgres
from tests.lab.process import (
    LOG_LEVEL,
    LOOPBACK,
    PeerStartError,
    Process,
    child_env,
    command_report,
    free_port,
    loopback_get,
    require_loopback,
)
from tests.lab.registry import Registry, run_registry

__all__ = [
    "DEFAULT_PASSPHRASES",
    "DockerCLI",
    "GATEWAY_CONFIG",
    "LOG_LEVEL",
    "LOOPBACK",
    "PG_SUPERUSER",
    "Gateway",
    "LabPKI",
    "MotoServer",
    "NotarServer",
    "NotaryCLI",
    "NotaryServer",
    "NotarySigner",
    "PeerStartError",
    "PostgresServer",
    "Process",
    "Registry",
    "child_env",
    "command_report",
    "free_port",
    "issue_leaf",
    "loopback_get",
    "make_lab_pki",
    "postgres_bindir",
    "require_loopback",
    "run_gateway",
    "run_moto",
    "run_notar_server",
    "run_notary_server",
    "run_notary_signer",
    "run_postgres",
    "run_registry",
]
