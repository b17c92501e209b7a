"""Token auth like the docker registry's: challenges, scopes, x5c and kid tokens, expiry, forgery."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from notar.server.app import ServerSettings, create_app
from notar.server.auth import TokenAuth, libtrust_key_id
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store

GUN = "registry.example.com/team/app"
TUF = f"/v2/{GUN}/_trust/tuf/"


def _cert(
    key: ec.EllipticCurvePrivateKey,
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: str,
    ca: bool,
    *,
    days: tuple[float, float] = (-5 / 1440, 30),
    cert_sign: bool | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if cert_sign is not None:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


class Issuer:
    def __init__(self, directory: Path) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert(self.ca_key, "token CA", self.ca_key, "token CA", True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _cert(self.key, "token signer", self.ca_key, "token CA", False)
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    def token(
        self,
        access: list[dict[str, Any]],
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        use_kid: bool = False,
        chain: list[x509.Certificate] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": "test-issuer",
            "aud": "notar-test",
            "sub": "alice",
            "iat": now,
            "nbf": now - 1,
            "exp": now + 300,
            "access": access,
            **claims,
        }
        if use_kid:
            headers = {"kid": libtrust_key_id(self.ca_key.public_key())}
            return jwt.encode(body, key or self.ca_key, algorithm="ES256", headers=headers)
        x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in chain or [self.leaf]
        ]
        return jwt.encode(body, key or self.key, algorithm="ES256", headers={"x5c": x5c})


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
    app = create_app(
        ServerSettings(), service=TrustService(store, DatabaseKeyService(store, Secret("pw"))), auth=auth
    )
    with TestClient(app) as c:
        yield c
    store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def repo(*actions: str, name: str = GUN) -> list[dict[str, Any]]:
    return [{"type": "repository", "name": name, "actions": list(actions)}]


def test_challenge_without_token(client: TestClient) -> None:
    r = client.get(TUF + "root.json")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="https://auth.example.com/token",service="notar-test",scope="repository:{GUN}:pull"'
    )
    body = r.json()["errors"][0]
    assert body["code"] == "UNAUTHORIZED" and body["message"] == "authentication required"
    assert body["detail"] == [{"Type": "repository", "Class": "", "Name": GUN, "Action": "pull"}]
    ping = client.get("/v2/")
    assert ping.status_code == 401 and 'scope="registry:catalog:*"' in ping.headers["www-authenticate"]
    post = client.post(TUF, content=b"")
    assert 'scope="repository:' + GUN + ':push,pull"' in post.headers["www-authenticate"]
    # health needs no token; metrics do (red-team finding 3, tests/server/test_metrics_auth.py)
    assert client.get("/_notary_server/health").status_code == 200
    assert client.get("/metrics").status_code == 401


def test_scopes(client: TestClient, issuer: Issuer) -> None:
    pull = bearer(issuer.token(repo("pull")))
    assert client.get(TUF + "root.json", headers=pull).status_code == 404  # authorised, just not there
    r = client.get(TUF + "timestamp.key", headers=pull)
    assert r.status_code == 401 and r.headers["www-authenticate"].endswith(',error="insufficient_scope"')
    push_pull = bearer(issuer.token(repo("pull", "push")))
    assert client.get(TUF + "timestamp.key", headers=push_pull).status_code == 200
    assert client.delete(TUF, headers=push_pull).status_code == 401  # delete needs "*"
    star = bearer(issuer.token(repo("*")))
    assert client.delete(TUF, headers=star).status_code == 200
    assert client.post(TUF + "timestamp.key", headers=star).status_code == 200
    other = bearer(issuer.token(repo("*", name=GUN + "-other")))
    assert client.get(TUF + "root.json", headers=other).status_code == 401
    catalog = bearer(issuer.token([{"type": "registry", "name": "catalog", "actions": ["*"]}]))
    assert client.get("/v2/", headers=catalog).status_code == 200
    assert client.get("/v2/_trust/changefeed?records=1", headers=catalog).status_code == 200
    assert client.get("/v2/_trust/changefeed?records=1", headers=pull).status_code == 401


def test_kid_tokens(client: TestClient, issuer: Issuer) -> None:
    token = issuer.token(repo("pull"), use_kid=True)
    assert client.get(TUF + "root.json", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize(
    "make",
    [
        lambda i: i.token(repo("pull"), exp=int(time.time()) - 120),
        lambda i: i.token(repo("pull"), iss="someone-else"),
        lambda i: i.token(repo("pull"), aud="other-service"),
        lambda i: i.token(repo("pull"), key=ec.generate_private_key(ec.SECP256R1())),  # forged signature
        lambda i: jwt.encode(
            {"access": repo("pull")}, "an-hmac-secret-that-is-long-enough-32b", algorithm="HS256"
        ),
        lambda i: "not-a-jwt",
        lambda i: i.token(repo("pull")) + "x",
    ],
    ids=["expired", "issuer", "audience", "forged", "hmac", "garbage", "truncated"],
)
def test_invalid_tokens(client: TestClient, issuer: Issuer, make: Any) -> None:
    r = client.get(TUF + "root.json", headers=bearer(make(issuer)))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].endswith(',error="invalid_token"')


def test_untrusted_chain(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "stranger").mkdir()
    stranger = Issuer(tmp_path / "stranger")
    r = client.get(TUF + "root.json", headers=bearer(stranger.token(repo("pull"))))
    assert r.status_code == 401


def test_certificate_chains_are_validated_not_only_signed(client: TestClient, issuer: Issuer) -> None:
    """Expired certificates, a leaf posing as an intermediate and an issuer without keyCertSign are refused."""
    access = repo("pull")
    ok = client.get(TUF + "root.json", headers=bearer(issuer.token(access)))
    assert ok.status_code == 404  # authorised (no trust data yet)

    expired = _cert(issuer.key, "old signer", issuer.ca_key, "token CA", False, days=(-400, -30))
    future = _cert(issuer.key, "early signer", issuer.ca_key, "token CA", False, days=(10, 40))
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert(rogue_key, "rogue", issuer.key, "token signer", False)  # signed by the non-CA leaf
    # a CA whose key usage does not allow certificate signing
    no_sign_key = ec.generate_private_key(ec.SECP256R1())
    no_sign = _cert(no_sign_key, "no-sign CA", issuer.ca_key, "token CA", True, cert_sign=False)
    below = _cert(rogue_key, "below", no_sign_key, "no-sign CA", False)
    for chain, key in (
        ([expired], issuer.key),
        ([future], issuer.key),
        ([rogue, issuer.leaf], rogue_key),
        ([below, no_sign], rogue_key),
    ):
        r = client.get(TUF + "root.json", headers=bearer(issuer.token(access, chain=chain, key=key)))
        assert r.status_code == 401, [c.subject.rfc4514_string() for c in chain]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_import_needs_push_and_force_needs_star(client: TestClient, issuer: Issuer) -> None:
    url = f"/v2/{GUN}/_trust/import"
    assert client.post(url, content=b"{}").status_code == 401
    pull = bearer(issuer.token(repo("pull")))
    assert client.post(url, content=b"{}", headers=pull).status_code == 401
    push_pull = bearer(issuer.token(repo("pull", "push")))
    # authorised: the empty body is then refused as malformed (nothing stored)
    r = client.post(url, content=b"{}", headers=push_pull)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MALFORMED_JSON"
    # replacing a repository, like deleting one, needs "*"
    r = client.post(url + "?force=true", content=b"{}", headers=push_pull)
    assert r.status_code == 401 and r.headers["www-authenticate"].endswith(',error="insufficient_scope"')
    everything = bearer(issuer.token(repo("pull", "push", "*")))
    assert client.post(url + "?force=true", content=b"{}", headers=everything).status_code == 400
