"""A throw-away PostgreSQL cluster (initdb in a temp dir, trust auth, durability off) on loopback TCP.

``NOTAR_PG_BINDIR`` picks the server binaries (default: the newest /usr/lib/postgresql/*/bin). As root, the
programs run as the ``postgres`` OS user (they refuse to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.lab.process import (
    LOG_LEVEL,
    LOOPBACK,
    PeerStartError,
    Process,
    child_env,
    command_report,
    free_port,
    require_loopback,
)

PG_SUPERUSER = "postgres"  # the database superuser initdb creates (trust auth, no password)
PG_OS_USER = "postgres"  # the OS user (from the Debian package) that runs the server when we are root
_PG_LOG_LEVELS = {
    "debug": "debug1",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
}
_PG_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_bindir() -> Path:
    """The PostgreSQL server binaries: $NOTAR_PG_BINDIR, else the newest /usr/lib/postgresql/<ver>/bin."""
    override = os.environ.get("NOTAR_PG_BINDIR")
    if override:
        candidates = [Path(override)]
    else:
        found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
        candidates = sorted(found, key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    where = override or "/usr/lib/postgresql/*/bin"
    raise PeerStartError(f"PostgreSQL server binaries not found in {where}; run scripts/install-peers.sh")


def _postgres_os_user() -> tuple[list[str], int | None, int | None]:
    """(argv prefix, uid, gid) to run PostgreSQL programs, which refuse to run as root.

    As root: ``setpriv`` switches to the ``postgres`` user and execs (so the PID we hold is postgres' own)
    and re-arms the parent-death signal, which the change of user clears. Otherwise: run as ourselves.
    """
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise PeerStartError(
            f"running as root, but there is no {PG_OS_USER!r} OS user to run PostgreSQL as;"
            " run scripts/install-peers.sh (the Debian postgresql package creates it)"
        ) from None
    prefix = [
        "setpriv",
        f"--reuid={pw.pw_uid}",
        f"--regid={pw.pw_gid}",
        "--init-groups",
        "--pdeathsig=SIGKILL",
        "--",
    ]
    return prefix, pw.pw_uid, pw.pw_gid


class _PostgresProcess(Process):
    """``postgres`` takes SIGTERM as a *smart* shutdown, which waits for every client to disconnect.

    Send SIGINT (*fast* shutdown: roll back, disconnect clients, checkpoint, exit) to the postmaster first;
    :meth:`Process.stop` then escalates to SIGTERM/SIGKILL on the process group if it is still running.
    """

    def stop(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGINT)  # not yet reaped, so the PID is still ours
            deadline = time.monotonic() + self.stop_grace
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.05)
        super().stop()


@dataclass(frozen=True)
class PostgresServer:
    host: str  # 127.0.0.1
    port: int
    user: str  # database superuser, trust auth (no password)
    pid: int
    data_dir: Path
    log: Path
    process: Process

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` (no TLS, no password: loopback and trust auth)."""
        return require_loopback(
            f"postgresql://{self.user}@{self.host}:{self.port}/{database}?sslmode=disable"
        )

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit psycopg connection as the superuser; use it in a ``with`` block."""
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default ``test_<uuid>``) and return its name."""
        name = name or f"test_{uuid.uuid4().hex}"
        if not _PG_DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _wait_for_queries(proc: Process, url: str, timeout: float) -> None:
    """postgres accepts TCP connections while it is still starting up; wait until it answers a query."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as e:
            if not proc.running():
                raise proc.failure(f"exited with rc={proc.returncode()} during start-up") from None
            if time.monotonic() > deadline:
                raise proc.failure(f"not answering queries after {timeout:.0f} s: {e}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def run_postgres(workdir: Path, *, log_level: str = LOG_LEVEL) -> Iterator[PostgresServer]:
    """initdb a throw-away cluster and run ``postgres`` on 127.0.0.1:<free port>; stop and delete it on exit.

    The cluster lives in a fresh directory under the system temp dir, owned by the user postgres runs as
    (pytest's tmp dirs are private to root); the server log is ``workdir/postgres.log``. Durability is off
    (fsync, synchronous_commit, full_page_writes): fast, and fine for data that dies with the test run.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = postgres_bindir()
    prefix, uid, gid = _postgres_os_user()
    base = Path(tempfile.mkdtemp(prefix="notar-pg-"))  # short: the socket path must stay < 108 bytes
    try:
        if uid is not None and gid is not None:
            os.chown(base, uid, gid)
        data = base / "data"
        env = child_env(home=base)
        initdb = [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        try:
            done = subprocess.run(
                initdb, capture_output=True, text=True, env=env, cwd=base, timeout=120, check=False
            )
        except FileNotFoundError as e:
            raise PeerStartError(f"initdb: {e}; run scripts/install-peers.sh") from e
        if done.returncode != 0:
            raise PeerStartError(
                command_report(f"initdb failed (rc={done.returncode})", initdb, done.stdout, done.stderr)
            )
        port = free_port()
        level = _PG_LOG_LEVELS.get(log_level.lower(), "warning")
        argv = [
            *prefix,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-h",
            LOOPBACK,
            "-p",
            str(port),
            "-k",
            str(base),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
            "-c",
            f"log_min_messages={level}",
        ]
        proc = _PostgresProcess("postgres", argv, log=workdir / "postgres.log", port=port, env=env, cwd=base)
        with proc:
            server = PostgresServer(
                host=LOOPBACK,
                port=port,
                user=PG_SUPERUSER,
                pid=proc.pid,
                data_dir=data,
                log=proc.log,
                process=proc,
            )
            _wait_for_queries(proc, server.url(), proc.start_timeout)
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)
