"""`notar server` as a real process (uvicorn, TLS) for tests, started like the peers in tests/peers.py.

Fixtures:
    notar_server      (session) `notar server` with TLS on SQLite     -> :class:`NotarServer`
    notar_notary_cli  (function) the Go notary CLI against it          -> :class:`tests.peers.NotaryCLI`
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import LOOPBACK, LabPKI, NotaryCLI, Process, child_env, free_port, loopback_get


@dataclass(frozen=True)
class NotarServer:
    url: str
    ca: Path
    pid: int
    log: Path
    data_dir: Path
    process: Process


@contextlib.contextmanager
def run_notar_server(
    pki: LabPKI | None,
    workdir: Path,
    *,
    database_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[NotarServer]:
    """Start `notar server` on a free loopback port (https when *pki* is given) and stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "notar",
        "server",
        "--listen",
        f"{LOOPBACK}:{port}",
        "--data-dir",
        str(workdir / "data"),
    ]
    if pki is not None:
        argv += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    if database_url:
        argv += ["--database-url", database_url]
    argv += ["--log-level", "warning", *extra_args]
    child = child_env(home=workdir, NOTAR_SERVER_KEY_PASSPHRASE="test-server-key-passphrase", **(env or {}))
    proc = Process("notar-server", argv, log=workdir / "notar-server.log", port=port, env=child, cwd=workdir)
    with proc:
        scheme = "https" if pki is not None else "http"
        url = f"{scheme}://{LOOPBACK}:{port}"
        status, body = loopback_get(f"{url}/_notary_server/health", ca=pki.ca if pki else None)
        if status != 200:
            raise proc.failure(f"health check answered {status}: {body[:200]!r}")
        yield NotarServer(
            url=url,
            ca=pki.ca if pki else Path(),
            pid=proc.pid,
            log=proc.log,
            data_dir=workdir / "data",
            process=proc,
        )


@pytest.fixture(scope="session")
def notar_server(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotarServer]:
    """One `notar server` (TLS, SQLite) for the session; use a distinct GUN per test."""
    with run_notar_server(lab_pki, tmp_path_factory.mktemp("notar-server")) as server:
        yield server


@pytest.fixture
def notar_notary_cli(notar_server: NotarServer, tmp_path: Path) -> NotaryCLI:
    """The Go notary CLI against `notar server`, with a fresh trust dir."""
    return NotaryCLI(notar_server.url, notar_server.ca, tmp_path / "trust", home=tmp_path / "home")
