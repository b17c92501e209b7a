"""`notar gateway` as a real process in front of the real registry, and in-process signing helpers."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from notar.client import Repository, TrustCache, TrustServer
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.tuf import FileMeta
from tests.peers import LOOPBACK, Process, Registry, child_env, free_port
from tests.servers import NotarServer

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


@pytest.fixture(scope="session")
def gateway(
    registry: Registry, notar_server: NotarServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One gateway for the session: every repository trust-enabled except ``open/*``."""
    with run_gateway(
        tmp_path_factory.mktemp("gateway"),
        upstream=registry.url,
        trust_server=notar_server.url,
        ca=notar_server.ca,
    ) as gw:
        yield gw


@pytest.fixture
def repo() -> str:
    return f"gw/app-{uuid.uuid4().hex[:8]}"


class Signer:
    """Signs tags in-process (a key holder's `notar sign`, without the registry lookup)."""

    def __init__(self, server: NotarServer, trust_dir: Path) -> None:
        self.server = server
        self.trust_dir = trust_dir

    def sign(self, gun: str, tags: dict[str, bytes]) -> None:
        """Sign each tag as the sha256 and length of the given manifest bytes."""
        keys = FileKeyStore(
            self.trust_dir, CallbackPassphrases(lambda _kid, _alias: "test-gateway-passphrase")
        )
        https = self.server.url.startswith("https://")
        verify = ssl.create_default_context(cafile=self.server.ca) if https else True
        with TrustServer(self.server.url, verify=verify) as server:
            repository = Repository(gun, server=server, cache=TrustCache(self.trust_dir), keys=keys)
            repository.sign(
                {
                    tag: FileMeta(len(data), {"sha256": hashlib.sha256(data).digest()})
                    for tag, data in tags.items()
                }
            )


@pytest.fixture
def signer(notar_server: NotarServer, tmp_path: Path) -> Signer:
    return Signer(notar_server, tmp_path / "signer-trust")
