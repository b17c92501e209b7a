"""The session gateway (`notar gateway` from tests.lab.gateway in front of the real registry), and in-process
signing helpers."""

from __future__ import annotations

import hashlib
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.client import Repository, TrustCache, TrustServer
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.tuf import FileMeta
from tests.lab import Gateway, NotarServer, Registry, run_gateway


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
