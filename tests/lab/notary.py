"""The Go notary from Debian: ``notary-server`` (TLS, memory storage, local trust service) and the
``notary`` CLI against any trust server (the Go reference client of the interop tests)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.lab.pki import LabPKI
from tests.lab.process import (
    LOG_LEVEL,
    LOOPBACK,
    Process,
    child_env,
    command_report,
    free_port,
    loopback_get,
    require_loopback,
)


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
                command_report(f"notary timed out after {self.timeout:.0f} s", argv, e.stdout, e.stderr)
            ) from None
        if check and result.returncode != 0:
            raise AssertionError(
                command_report(f"notary failed (rc={result.returncode})", argv, result.stdout, result.stderr)
            )
        return result
