"""Red-team finding: ``/metrics`` answered without a token while token auth was on.

With token auth on, /metrics now needs a token with the scope of the other non-repository endpoints
(``registry:catalog:*``, as /v2/ and the global changefeed); without auth it stays open like everything else.
The health check stays open (load balancers probe it; it is open in notary-server too).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notar.server.app import ServerSettings, create_app
from notar.server.auth import TokenAuth
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from tests.lab import LOOPBACK, child_env, loopback_get, run_notar_server
from tests.server.test_auth import GUN, Issuer

CATALOG = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
CHALLENGE = 'Bearer realm="https://auth.example.com/token",service="notar-test",scope="registry:catalog:*"'


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path)


@pytest.fixture
def client(tmp_path: Path, issuer: Issuer) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    auth = TokenAuth(
        realm="https://auth.example.com/token",
        service="notar-test",
        issuer="test-issuer",
        root_bundle=issuer.bundle,
    )
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")))
    with TestClient(create_app(ServerSettings(), service=service, auth=auth)) as c:
        yield c
    store.close()


def test_metrics_need_a_catalog_token(client: TestClient, issuer: Issuer) -> None:
    r = client.get("/metrics")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == CHALLENGE
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert b"notar_server_http_requests" not in r.content
    # a token for one repository is not enough, however many actions it has
    repo_token = issuer.token([{"type": "repository", "name": GUN, "actions": ["*", "pull", "push"]}])
    r = client.get("/metrics", headers={"Authorization": f"Bearer {repo_token}"})
    assert r.status_code == 401 and r.headers["www-authenticate"].endswith(',error="insufficient_scope"')
    r = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"].endswith(',error="invalid_token"')
    r = client.get("/metrics", headers={"Authorization": f"Bearer {issuer.token(CATALOG)}"})
    assert r.status_code == 200 and "notar_server_http_requests" in r.text
    assert r.headers["content-type"].startswith("text/plain")
    # the refused scrapes were counted, the health check is still open
    assert 'status="401"' in r.text
    assert client.get("/_notary_server/health").status_code == 200


@pytest.mark.peers
def test_notar_server_process_with_token_auth(tmp_path: Path) -> None:
    issuer = Issuer(tmp_path)
    auth = (
        "--auth-realm",
        "https://auth.example.com/token",
        "--auth-service",
        "notar-test",
        "--auth-issuer",
        "test-issuer",
        "--auth-root-bundle",
        str(issuer.bundle),
    )
    with run_notar_server(None, tmp_path / "server", extra_args=auth) as server:
        assert server.url.startswith(f"http://{LOOPBACK}:")
        status, body = loopback_get(f"{server.url}/metrics")
        assert status == 401 and b"UNAUTHORIZED" in body and b"notar_server" not in body
        request = urllib.request.Request(  # noqa: S310 - a loopback URL from the fixture
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {issuer.token(CATALOG)}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with opener.open(request, timeout=10) as response:
            assert response.status == 200 and b"notar_server_http_requests" in response.read()
        assert loopback_get(f"{server.url}/_notary_server/health") == (200, b"{}")


def test_help_says_how_metrics_are_protected(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "notar", "server", "--help"],
        capture_output=True,
        text=True,
        env=child_env(home=tmp_path),
        check=True,
    )
    text = " ".join(r.stdout.split())
    assert "/metrics" in text and "registry:catalog:*" in text
