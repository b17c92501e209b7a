"""The Go notary from Debian: ``notary-server`` (TLS, memory storage; local trust service, or
``notary-signer`` over gRPC mTLS as deployed) and the ``notary`` CLI against any trust server (the Go
reference client of the interop tests)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.lab.pki import LabPKI, issue_leaf
from tests.lab.process import (
    LOG_LEVEL,
    LOOPBACK,
    Process,
    child_env,
    free_port,
    loopback_get,
    require_loopback,
    run_peer,
)


@dataclass(frozen=True)
class NotarySigner:
    """``notary-signer``: gRPC on ``addr`` over mutual TLS (its own leaf; clients need a lab-CA certificate)."""

    addr: str  # 127.0.0.1:PORT
    port: int
    ca: Path  # the lab CA: signed the signer's certificate and is its client CA
    cert: Path  # the signer's own certificate (serverAuth + clientAuth, SAN 127.0.0.1)
    key: Path
    pid: int
    log: Path  # JSON lines (-logf logfmt is ignored)
    config: Path
    process: Process


@dataclass(frozen=True)
class NotaryServer:
    url: str  # https://127.0.0.1:PORT
    ca: Path  # CA that signed the server certificate
    pid: int
    log: Path  # JSON lines (notary-server ignores -logf logfmt)
    config: Path
    process: Process
    signer: NotarySigner | None = None  # set when the trust service is a notary-signer (remote)


# notary-signer reads the passphrase of its key store from NOTARY_SIGNER_<ALIAS> (alias from
# storage.default_alias or NOTARY_SIGNER_DEFAULT_ALIAS). With memory storage it ignores both (keys are
# held unencrypted in memory); they are set anyway, as a deployment does, so a later SQL backend needs no
# new wiring.
SIGNER_ALIAS = "labalias"
SIGNER_ALIAS_PASSPHRASE = "lab-signer-alias-passphrase"
# A GUN no test uses: notary-server asks the signer for its timestamp key once at start-up (over mTLS),
# which proves the whole chain; for a GUN without root the signer only makes a key, nothing is stored.
_SIGNER_PROBE_GUN = "127.0.0.1:1/lab/signer-probe"


@contextlib.contextmanager
def run_notary_signer(pki: LabPKI, workdir: Path, *, log_level: str = LOG_LEVEL) -> Iterator[NotarySigner]:
    """Start ``notary-signer`` (gRPC, mutual TLS with the lab CA as client CA, memory storage)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = issue_leaf(pki, workdir, "notary-signer", cn="notarysigner")
    port = free_port()
    config = {
        "server": {
            "grpc_addr": f"{LOOPBACK}:{port}",
            "tls_cert_file": str(cert),
            "tls_key_file": str(key),
            "client_ca_file": str(pki.ca),
        },
        "storage": {"backend": "memory"},
        "logging": {"level": log_level},
    }
    conf = workdir / "signer.json"
    conf.write_text(json.dumps(config, indent=2))
    env = child_env(
        home=workdir,
        NOTARY_SIGNER_DEFAULT_ALIAS=SIGNER_ALIAS,
        **{f"NOTARY_SIGNER_{SIGNER_ALIAS.upper()}": SIGNER_ALIAS_PASSPHRASE},
    )
    proc = Process(
        "notary-signer",
        ["notary-signer", "-config", str(conf), "-logf", "logfmt"],
        log=workdir / "notary-signer.log",
        port=port,
        env=env,
        cwd=workdir,
    )
    with proc:
        yield NotarySigner(
            addr=f"{LOOPBACK}:{port}",
            port=port,
            ca=pki.ca,
            cert=cert,
            key=key,
            pid=proc.pid,
            log=proc.log,
            config=conf,
            process=proc,
        )


@contextlib.contextmanager
def run_notary_server(
    pki: LabPKI, workdir: Path, *, log_level: str = LOG_LEVEL, signer: bool = False
) -> Iterator[NotaryServer]:
    """Start ``notary-server`` (TLS, memory storage) and stop it on exit.

    The trust service is local (keys inside notary-server), or with ``signer=True`` a ``notary-signer``
    started first in ``workdir/signer`` and reached over gRPC with mutual TLS, as deployed: notary-server
    presents the lab server leaf as its client certificate and checks the signer's leaf against the lab
    CA. Both are stopped by PID on exit (the server first).
    """
    with contextlib.ExitStack() as stack:
        remote = None
        if signer:
            remote = stack.enter_context(run_notary_signer(pki, workdir / "signer", log_level=log_level))
        yield stack.enter_context(_notary_server(pki, workdir, log_level=log_level, signer=remote))


@contextlib.contextmanager
def _notary_server(
    pki: LabPKI, workdir: Path, *, log_level: str, signer: NotarySigner | None
) -> Iterator[NotaryServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    trust_service: dict[str, str] = {"type": "local"}
    if signer is not None:
        trust_service = {
            "type": "remote",
            "hostname": LOOPBACK,  # verified against the signer certificate's IP SAN
            "port": str(signer.port),
            "key_algorithm": "ecdsa",
            "tls_ca_file": str(signer.ca),
            "tls_client_cert": str(pki.server_cert),
            "tls_client_key": str(pki.server_key),
        }
    config = {
        "server": {
            "http_addr": f"{LOOPBACK}:{port}",
            "tls_cert_file": str(pki.server_cert),
            "tls_key_file": str(pki.server_key),
        },
        "trust_service": trust_service,
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
        if signer is not None:  # the health check passes before the first signer check: make a key
            status, body = loopback_get(f"{url}/v2/{_SIGNER_PROBE_GUN}/_trust/tuf/timestamp.key", ca=pki.ca)
            if status != 200:
                raise proc.failure(
                    f"timestamp key from notary-signer: {status} {body[:200]!r}\n"
                    f"--- last lines of {signer.log} ---\n{signer.process.tail()}"
                )
        yield NotaryServer(
            url=url, ca=pki.ca, pid=proc.pid, log=proc.log, config=conf, process=proc, signer=signer
        )


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
        return run_peer(
            "notary",
            self.argv(*args),
            env=self.env(),
            cwd=self.home,
            timeout=self.timeout,
            input=input,
            check=check,
        )
