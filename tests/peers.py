"""Real peer processes for the test-suite: Go notary-server, the distribution registry, the notary CLI.

Everything here runs on 127.0.0.1 only, on free ports, from the Debian packages that
``scripts/install-peers.sh`` installs. A missing program is an error, never a skip.

Register the fixtures with ``pytest_plugins = ["tests.peers"]`` (root conftest or a test module).

Fixtures:
    lab_pki        (session) throw-away CA + server leaf certificate        -> :class:`LabPKI`
    notary_server  (session) ``notary-server`` with TLS, memory storage   -> :class:`NotaryServer`
    registry       (session) ``docker-registry`` on plain HTTP             -> :class:`Registry`
    notary_cli     (function) ``notary`` CLI with a fresh trust dir        -> :class:`NotaryCLI`
    postgres_server   (session) PostgreSQL, initdb'd in a temp dir, trust auth -> :class:`PostgresServer`
    postgres_database (function) URL of a fresh empty database on it, dropped after the test

Knobs: ``NOTAR_PEERS_LOG_LEVEL`` (default ``error``) sets the peers' log level; logs are in each
fixture's ``.log`` file and their tail is shown when a peer fails to start.
``NOTAR_PG_BINDIR`` picks the PostgreSQL server binaries (default: the newest /usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

LOOPBACK = "127.0.0.1"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOG_LEVEL = os.environ.get("NOTAR_PEERS_LOG_LEVEL", "error")


# --------------------------------------------------------------------------- network helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def require_loopback(url: str) -> str:
    """Return ``url`` unchanged, or fail if it points anywhere but this machine's loopback."""
    host = urllib.parse.urlsplit(url).hostname
    if host not in _LOOPBACK_HOSTS:
        raise AssertionError(f"refusing non-loopback URL in tests: {url!r}")
    return url


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment for peer processes.

    Built from scratch rather than copied, so no HTTP(S)_PROXY / ALL_PROXY, no DOCKER_* or
    REGISTRY_* overrides and no real HOME leak into the child. NO_PROXY is set as a second guard.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


def loopback_get(url: str, *, ca: Path | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """``GET url`` on loopback, never through a proxy; returns (status, body), also for 4xx/5xx."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # ignore *_proxy env
    if ca is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(ca))))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(require_loopback(url), timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------- process manager

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here: no dlopen between fork and exec
_LIVE: set[Process] = set()  # started and not yet reaped; killed at interpreter exit as a last resort


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when pytest dies (even by SIGKILL), so nothing lingers."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PeerStartError(RuntimeError):
    """A peer process did not come up; the message carries the tail of its log."""


class Process:
    """One child process in its own session (setsid), output in a log file, stopped by PID.

    ``start()`` waits until ``port`` (if given) accepts TCP connections on 127.0.0.1, failing fast
    with the last log lines if the process exits first. ``stop()`` sends SIGTERM, then SIGKILL after
    ``stop_grace`` seconds, and reaps the child. Use it as a context manager so it is stopped
    whatever happens in between.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout: float = 20.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.port = port
        self.env = dict(env) if env is not None else child_env()
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log file (for error messages)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def start(self) -> Process:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as logf:  # the child keeps its own copy of the descriptor
            try:
                self._popen = self._spawn(logf)
            except FileNotFoundError as e:
                raise PeerStartError(f"{self.name}: {e}; run scripts/install-peers.sh") from e
        _LIVE.add(self)
        try:
            if self.port is not None:
                self._wait_for_port(self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, logf: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,  # setsid: own process group, no terminal signals
            preexec_fn=_die_with_parent,  # Linux only; fine in single-threaded pytest
        )

    def failure(self, why: str) -> PeerStartError:
        """An error naming the command, ``why`` and the tail of the log (raise it)."""
        cmd = shlex.join(self.argv)
        return PeerStartError(f"{self.name}: {why}\n$ {cmd}\n--- last lines of {self.log} ---\n{self.tail()}")

    def _wait_for_port(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running():
                rc = self.returncode()
                raise self.failure(f"exited with rc={rc} before port {port} accepted connections")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5):
                    pass
            except OSError:
                if time.monotonic() > deadline:
                    raise self.failure(
                        f"port {port} not accepting after {self.start_timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
                continue
            # Something answers; make sure it is us and not another process that got the port first.
            time.sleep(0.1)
            if not self.running():
                raise self.failure(f"port {port} answers but the process exited (port taken?)")
            return

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def _signal_group(self, sig: int) -> None:
        # With setsid the process-group id equals our child's PID. Signal only while the child is
        # not yet reaped, so the id cannot have been reused by an unrelated process.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_grace`` s; always reaps the child. Idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                popen.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                popen.wait(10)
        _LIVE.discard(self)  # only once reaped; otherwise the atexit hook tries again

    def __enter__(self) -> Process:
        return self.start() if self._popen is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        proc.stop_grace = 1.0
        proc.stop()


# --------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class LabPKI:
    """Paths of a throw-away P-256 CA and a server leaf for 127.0.0.1 / localhost."""

    dir: Path
    ca: Path  # CA certificate (PEM): pass as --tlscacert / cafile
    ca_key: Path
    server_cert: Path
    server_key: Path  # unencrypted PKCS#8 PEM, mode 0600


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    path.chmod(0o600)  # also when the file existed with other bits


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)  # an hour of clock skew
    return builder.not_valid_before(start).not_valid_after(end)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """digitalSignature (ECDSA TLS), plus keyCertSign + cRLSign for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_lab_pki(directory: Path) -> LabPKI:
    """Create the CA and the server leaf in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notar test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            # clientAuth too, so the same leaf can later do mTLS towards notary-signer
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address(LOOPBACK)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pki = LabPKI(
        dir=directory,
        ca=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.ca_key, ca_key)
    _write_key(pki.server_key, leaf_key)
    return pki


# --------------------------------------------------------------------------- notary-server


@dataclass(frozen=True)
class NotaryServer:
    url: str  # https://127.0.0.1:PORT
    ca: Path  # CA that signed the server certificate
    pid: int
    log: Path  # JSON lines (notary-server ignores -logf logfmt)
    config: Path
    process: Process


@contextlib.contextmanager
def run_notary_server(pki: LabPKI, workdir: Path, *, log_level: str = LOG_LEVEL) -> Iterator[NotaryServer]:
    """Start ``notary-server`` (TLS, memory storage, local trust service) and stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "server": {
            "http_addr": f"{LOOPBACK}:{port}",
            "tls_cert_file": str(pki.server_cert),
            "tls_key_file": str(pki.server_key),
        },
        "trust_service": {"type": "local"},
        "storage": {"backend": "memory"},
        "logging": {"level": log_level},
    }
    conf = workdir / "server.json"
    conf.write_text(json.dumps(config, indent=2))
    proc = Process(
        "notary-server",
        ["notary-server", "-config", str(conf), "-logf", "logfmt"],
        log=workdir / "notary-server.log",
        port=port,
        env=child_env(home=workdir),
        cwd=workdir,
    )
    with proc:
        url = f"https://{LOOPBACK}:{port}"
        try:  # over TLS, verified against our CA: proves the certificate setup too
            status, body = loopback_get(f"{url}/_notary_server/health", ca=pki.ca)
        except OSError as e:
            raise proc.failure(f"health check failed: {e}") from e
        if status != 200:
            raise proc.failure(f"health check answered {status}: {body[:200]!r}")
        yield NotaryServer(url=url, ca=pki.ca, pid=proc.pid, log=proc.log, config=conf, process=proc)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Registry:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT, the registry part of image references / GUNs
    pid: int
    data_dir: Path  # filesystem storage root
    log: Path
    config: Path
    process: Process


@contextlib.contextmanager
def run_registry(workdir: Path, *, log_level: str = LOG_LEVEL) -> Iterator[Registry]:
    """Start ``docker-registry`` (distribution v2) on plain HTTP with filesystem storage."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    port = free_port()
    host = f"{LOOPBACK}:{port}"
    # JSON is valid YAML, so the config needs no YAML quoting rules.
    config = {
        "version": "0.1",
        "log": {"level": log_level, "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(data)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {
            "addr": host,
            "secret": "notar-tests-only",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }
    conf = workdir / "config.yml"
    conf.write_text(json.dumps(config, indent=2))
    proc = Process(
        "docker-registry",
        ["docker-registry", "serve", str(conf)],
        log=workdir / "registry.log",
        port=port,
        env=child_env(home=workdir),
        cwd=workdir,
    )
    with proc:
        yield Registry(
            url=f"http://{host}",
            host=host,
            pid=proc.pid,
            data_dir=data,
            log=proc.log,
            config=conf,
            process=proc,
        )


# --------------------------------------------------------------------------- notary CLI

DEFAULT_PASSPHRASES: Mapping[str, str] = {
    "root": "test-root-pass",
    "targets": "test-targets-pass",
    "snapshot": "test-snapshot-pass",
    "delegation": "test-delegation-pass",
}


class NotaryCLI:
    """Runs the Go ``notary`` CLI against one server with one trust dir.

    ``passphrases`` maps a role (root, targets, snapshot, delegation) to the passphrase given
    through ``NOTARY_<ROLE>_PASSPHRASE``; missing roles use :data:`DEFAULT_PASSPHRASES`.
    HOME points at ``home`` (default: a sibling ``<trust_dir>-home``) so ~/.notary is untouched.
    """

    def __init__(
        self,
        server_url: str,
        ca: Path,
        trust_dir: Path,
        passphrases: Mapping[str, str] | None = None,
        *,
        home: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.server_url = require_loopback(server_url)
        self.ca = ca
        self.trust_dir = trust_dir
        self.home = home if home is not None else trust_dir.with_name(trust_dir.name + "-home")
        self.passphrases = {**DEFAULT_PASSPHRASES, **(passphrases or {})}
        self.timeout = timeout
        self.trust_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        base = ["notary", "-s", self.server_url, "-d", str(self.trust_dir), "--tlscacert", str(self.ca)]
        return [*base, *args]

    def env(self) -> dict[str, str]:
        secrets = {f"NOTARY_{role.upper()}_PASSPHRASE": value for role, value in self.passphrases.items()}
        return child_env(home=self.home, **secrets)

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``notary ... args``; with ``check``, a non-zero exit raises an AssertionError."""
        argv = self.argv(*args)
        try:
            result = subprocess.run(
                argv,
                input=input,
                stdin=subprocess.DEVNULL if input is None else None,  # never wait on a prompt
                capture_output=True,
                text=True,
                env=self.env(),
                cwd=self.home,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as e:
            raise AssertionError(f"{e}; run scripts/install-peers.sh") from e
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                _report(f"notary timed out after {self.timeout:.0f} s", argv, e.stdout, e.stderr)
            ) from None
        if check and result.returncode != 0:
            raise AssertionError(
                _report(f"notary failed (rc={result.returncode})", argv, result.stdout, result.stderr)
            )
        return result


def _report(what: str, argv: Sequence[str], stdout: str | bytes | None, stderr: str | bytes | None) -> str:
    def text(s: str | bytes | None) -> str:
        return s.decode(errors="replace") if isinstance(s, bytes) else (s or "")

    return f"{what}\n$ {shlex.join(argv)}\n--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPKI:
    """CA + server leaf (P-256) for 127.0.0.1 / localhost, in a session tmp dir."""
    return make_lab_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def notary_server(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotaryServer]:
    """One notary-server for the session; its memory storage is shared, so use a distinct GUN per test."""
    with run_notary_server(lab_pki, tmp_path_factory.mktemp("notary-server")) as server:
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


# --------------------------------------------------------------------------- PostgreSQL

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
                _report(f"initdb failed (rc={done.returncode})", initdb, done.stdout, done.stderr)
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
