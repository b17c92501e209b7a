"""``notar gateway`` as a real process in front of a registry, checking trust against a trust server."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.lab.process import LOOPBACK, Process, child_env, free_port

# The test-suite's policy: every repository is trust-enabled except open/*.
GATEWAY_CONFIG = "repositories: ['*']\nexclude: ['open/*']\nallow_index_children: true\n"


@dataclass(frozen=True)
class Gateway:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT: what clients type, and the GUN prefix
    process: Process
    log: Path

    def gun(self, repo: str) -> str:
        return f"{self.host}/{repo}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def run_gateway(
    workdir: Path,
    *,
    upstream: str,
    trust_server: str,
    ca: Path | None,
    config: str | None = GATEWAY_CONFIG,
    extra: tuple[str, ...] = (),
) -> Iterator[Gateway]:
    """Start `notar gateway` on a free loopback port in front of *upstream* and stop it on exit.

    *config* is written to ``workdir/gateway.yaml`` and passed as ``--config`` (None: no policy file);
    *ca* is the trust server's CA (``--tls-ca``); *extra* goes to the command line as it is.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "notar",
        "gateway",
        "--upstream",
        upstream,
        "--trust-server",
        trust_server,
        "--listen",
        f"{LOOPBACK}:{port}",
        "--trust-dir",
        str(workdir / "trust"),
        *extra,
    ]
    if ca is not None:
        argv += ["--tls-ca", str(ca)]
    if config is not None:
        conf = workdir / "gateway.yaml"
        conf.write_text(config)
        argv += ["--config", str(conf)]
    proc = Process("notar-gateway", argv, log=workdir / "gateway.log", port=port, env=child_env(home=workdir))
    with proc:
        host = f"{LOOPBACK}:{port}"
        yield Gateway(url=f"http://{host}", host=host, process=proc, log=proc.log)
