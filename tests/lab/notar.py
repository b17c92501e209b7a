"""``notar server`` as a real process (uvicorn; TLS when given the lab PKI; SQLite by default, or any
``--database-url``), started and stopped like the other peers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.lab.pki import LabPKI
from tests.lab.process import LOOPBACK, Process, child_env, free_port, loopback_get


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
