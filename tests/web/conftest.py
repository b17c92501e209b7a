"""The UI in process: the full server app (API + UI) on a real SQLite store, a fake registry, and a
client-library signer that publishes through the same app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notar.client import Repository, TrustCache, TrustServer
from notar.encoding import GoTime
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.server.app import ServerSettings, create_app
from notar.server.auth import TokenAuth
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import SQLMetaStore, migrate, open_store
from notar.tuf import FileMeta
from notar.web import create_web_app
from tests.registry.fakes import REGISTRY_HOST, FakeRegistry

GUN = f"{REGISTRY_HOST}/team/app"
REPO = "team/app"


class Clock:
    def __init__(self) -> None:
        self.offset_days = 0

    def __call__(self) -> GoTime:
        return GoTime.now().add(days=self.offset_days)


def digest_of(text: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def meta(text: str) -> FileMeta:
    """Trust metadata for a manifest whose bytes are *text*."""
    return FileMeta(len(text.encode()), {"sha256": bytes.fromhex(digest_of(text).split(":")[1])})


@dataclass
class Env:
    client: TestClient
    service: TrustService
    store: SQLMetaStore
    fake: FakeRegistry
    clock: Clock
    tmp: Path

    def signer(self, gun: str = GUN, trust_dir: str = "trust") -> Repository:
        """The client library, publishing through the app (as `notar sign` would)."""
        directory = self.tmp / trust_dir
        keys = FileKeyStore(directory, CallbackPassphrases(lambda _kid, _alias: "test-passphrase"))
        server = TrustServer("http://testserver", http=self.client)
        return Repository(gun, server=server, cache=TrustCache(directory), keys=keys, clock=self.clock)

    def push(self, tag: str, text: str, repo: str = REPO) -> str:
        """Put a manifest whose bytes are *text* under *tag* in the fake registry."""
        return self.fake.add_manifest(repo, tag, text.encode(), "application/vnd.oci.image.manifest.v1+json")


def make_env(tmp_path: Path, *, auth: TokenAuth | None = None, registry: bool = True) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    clock = Clock()
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")), clock=clock)
    fake = FakeRegistry()
    with fake.client() as registry_client:
        web = create_web_app(service, auth=auth, registry=registry_client if registry else None)
        app = create_app(ServerSettings(), service=service, auth=auth, web=web)
        with TestClient(app) as client:
            yield Env(client, service, store, fake, clock, tmp_path)
    store.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)
