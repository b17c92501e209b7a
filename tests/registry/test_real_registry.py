"""RegistryClient against the real distribution registry, with skopeo as the independent peer.

skopeo pushes images we built ourselves and reports what the registry holds; our client must see
exactly that. In the other direction, what our client pushes skopeo must pull back byte for byte.
A second registry runs with TLS (our lab CA) and htpasswd Basic auth, a third with token auth
against a small token server, to prove the auth paths against the real thing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notar.registry import (
    AuthenticationError,
    BlobNotFoundError,
    Credentials,
    DockerConfigCredentials,
    ManifestNotFoundError,
    RegistryClient,
    RegistryUnavailableError,
    RepositoryNotFoundError,
)
from tests.lab import LOOPBACK, LabPKI, Process, Registry, child_env, free_port
from tests.registry.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Image,
    Skopeo,
    make_image,
    make_index,
    sha256,
    write_oci_layout,
)

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(tmp_path_factory.mktemp("skopeo"))


@pytest.fixture
def client(registry: Registry) -> Iterator[RegistryClient]:
    with RegistryClient(registry.host) as c:
        yield c


@dataclass(frozen=True)
class Pushed:
    image: Image
    repo: str
    tag: str


@pytest.fixture(scope="module")
def pushed(registry: Registry, skopeo: Skopeo, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """An OCI image pushed by skopeo as ``skopeo/app:1.0``."""
    image = make_image("pushed by skopeo\n")
    layout = write_oci_layout(tmp_path_factory.mktemp("layout"), "1.0", image)
    skopeo.push_layout(layout, "1.0", f"{registry.host}/skopeo/app:1.0")
    return Pushed(image, "skopeo/app", "1.0")


def push_with_client(client: RegistryClient, repo: str, tag: str, image: Image, **kwargs: int) -> str:
    for blob in image.blobs:
        client.push_blob(repo, blob.digest, io.BytesIO(blob.data), blob.size, **kwargs)
    return client.put_manifest(repo, tag, image.manifest.data, image.manifest.media_type)


# ---------------------------------------------------------------------------- what skopeo pushed


def test_manifest_by_tag_is_what_skopeo_pushed(
    client: RegistryClient, pushed: Pushed, skopeo: Skopeo, registry: Registry
) -> None:
    raw = skopeo.inspect_raw(f"{registry.host}/{pushed.repo}:{pushed.tag}")
    manifest = client.get_manifest(pushed.repo, pushed.tag)
    assert manifest.data == raw == pushed.image.manifest.data
    assert manifest.digest == sha256(raw) == pushed.image.manifest.digest
    assert manifest.size == len(raw)
    assert manifest.media_type == OCI_MANIFEST
    # HEAD agrees with GET
    head = client.head_manifest(pushed.repo, pushed.tag)
    assert head == manifest.descriptor
    # by digest, too
    assert client.get_manifest(pushed.repo, manifest.digest) == manifest
    assert client.head_manifest(pushed.repo, manifest.digest) == manifest.descriptor


def test_blobs_download_verified(client: RegistryClient, pushed: Pushed) -> None:
    manifest = client.get_manifest(pushed.repo, pushed.tag)
    for descriptor, blob in zip(manifest.references(), pushed.image.blobs, strict=True):
        assert client.blob_exists(pushed.repo, descriptor.digest) == descriptor.size == blob.size
        out = io.BytesIO()
        assert (
            client.get_blob(pushed.repo, descriptor.digest, out, expected_size=descriptor.size) == blob.size
        )
        assert out.getvalue() == blob.data


def test_multi_platform_index(
    client: RegistryClient, skopeo: Skopeo, registry: Registry, tmp_path: Path
) -> None:
    index = make_index([make_image("amd64\n", arch="amd64"), make_image("arm64\n", arch="arm64")])
    layout = write_oci_layout(tmp_path / "layout", "multi", index)
    skopeo.push_layout(layout, "multi", f"{registry.host}/skopeo/multi:multi", all_images=True)
    raw = skopeo.inspect_raw(f"{registry.host}/skopeo/multi:multi")

    manifest = client.get_manifest("skopeo/multi", "multi")
    assert manifest.is_index
    assert manifest.media_type == OCI_INDEX
    assert manifest.data == raw == index.manifest.data
    assert manifest.digest == index.manifest.digest
    assert client.head_manifest("skopeo/multi", "multi") == manifest.descriptor
    children = manifest.references()
    assert [c.digest for c in children] == [i.manifest.digest for i in index.images]
    for child, image in zip(children, index.images, strict=True):
        got = client.get_manifest("skopeo/multi", child.digest)
        assert got.data == image.manifest.data and got.media_type == OCI_MANIFEST
        for blob in image.blobs:
            out = io.BytesIO()
            client.get_blob("skopeo/multi", blob.digest, out, expected_size=blob.size)
            assert out.getvalue() == blob.data


# ---------------------------------------------------------------------------- what we push


def assert_skopeo_pulls(skopeo: Skopeo, ref: str, image: Image, directory: Path) -> None:
    """skopeo copies ``ref`` to a dir: layout whose manifest and blobs equal ``image`` byte for byte."""
    assert skopeo.inspect_raw(ref) == image.manifest.data
    out = skopeo.pull_dir(ref, directory)
    assert (out / "manifest.json").read_bytes() == image.manifest.data
    for blob in image.blobs:
        assert (out / blob.digest.split(":", 1)[1]).read_bytes() == blob.data


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-schema2"])
def test_push_then_skopeo_pulls_identical(
    client: RegistryClient, skopeo: Skopeo, registry: Registry, tmp_path: Path, docker: bool
) -> None:
    image = make_image(f"pushed by notar, docker={docker}\n", docker=docker)
    repo = f"notar/push-{'docker' if docker else 'oci'}"
    digest = push_with_client(client, repo, "v1", image)
    assert digest == image.manifest.digest
    got = client.get_manifest(repo, "v1")
    assert got.media_type == (DOCKER_MANIFEST if docker else OCI_MANIFEST)
    assert_skopeo_pulls(skopeo, f"{registry.host}/{repo}:v1", image, tmp_path / "out")


def test_chunked_upload_then_skopeo_pulls(
    client: RegistryClient, skopeo: Skopeo, registry: Registry, tmp_path: Path
) -> None:
    # a 200 KiB incompressible layer, pushed in 32 KiB PATCH chunks (7 requests)
    payload = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(6400))
    base = make_image("chunked\n")
    layer = Blob(base.layers[0].media_type, payload)
    manifest = json.loads(base.manifest.data)
    manifest["layers"] = [layer.descriptor()]
    image = Image(Blob(OCI_MANIFEST, json.dumps(manifest).encode()), base.config, (layer,))
    push_with_client(client, "notar/chunked", "big", image, chunk_size=32 * 1024)
    out = io.BytesIO()
    client.get_blob("notar/chunked", layer.digest, out, expected_size=len(payload))
    assert out.getvalue() == payload
    assert_skopeo_pulls(skopeo, f"{registry.host}/notar/chunked:big", image, tmp_path / "out")


def test_cross_repository_mount(client: RegistryClient, pushed: Pushed) -> None:
    layer = pushed.image.layers[0]

    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("mounted blobs are not uploaded")

    assert client.blob_exists("notar/mounted", layer.digest) is None
    client.push_blob("notar/mounted", layer.digest, Unreadable(), layer.size, mount_from=pushed.repo)
    assert client.blob_exists("notar/mounted", layer.digest) == layer.size


def test_tags(client: RegistryClient) -> None:
    image = make_image("tags\n")
    push_with_client(client, "notar/tags", "t0", image)
    for tag in ["t1", "t2", "t3", "t4"]:
        client.put_manifest("notar/tags", tag, image.manifest.data, OCI_MANIFEST)
    # distribution 2.8 ignores n= on tags/list (and returns them unsorted): all come in one page
    assert sorted(client.tags("notar/tags", page_size=2)) == ["t0", "t1", "t2", "t3", "t4"]
    assert sorted(client.tags("notar/tags")) == ["t0", "t1", "t2", "t3", "t4"]


def test_not_found(client: RegistryClient, pushed: Pushed) -> None:
    with pytest.raises(ManifestNotFoundError) as info:
        client.get_manifest(pushed.repo, "no-such-tag")
    assert info.value.codes == ("MANIFEST_UNKNOWN",)
    with pytest.raises(ManifestNotFoundError):
        client.get_manifest("no/such-repo", "1.0")
    with pytest.raises(ManifestNotFoundError):
        client.head_manifest(pushed.repo, "no-such-tag")
    absent = sha256(b"absent")
    with pytest.raises(BlobNotFoundError) as blob_info:
        client.get_blob(pushed.repo, absent, io.BytesIO())
    assert blob_info.value.codes == ("BLOB_UNKNOWN",)
    assert client.blob_exists(pushed.repo, absent) is None
    with pytest.raises(RepositoryNotFoundError) as repo_info:
        client.tags("no/such-repo")
    assert repo_info.value.codes == ("NAME_UNKNOWN",)


def test_delete_manifest(client: RegistryClient) -> None:
    image = make_image("to delete\n")
    digest = push_with_client(client, "notar/delete", "gone", image)
    client.delete_manifest("notar/delete", digest)
    with pytest.raises(ManifestNotFoundError):
        client.get_manifest("notar/delete", "gone")
    with pytest.raises(ManifestNotFoundError):
        client.delete_manifest("notar/delete", digest)


def test_ping(client: RegistryClient) -> None:
    client.ping()


def test_registry_down() -> None:
    port = free_port()  # nothing listens there
    with RegistryClient(f"{LOOPBACK}:{port}") as down, pytest.raises(RegistryUnavailableError) as info:
        down.get_manifest("a/b", "1")
    assert f"http://{LOOPBACK}:{port}" in str(info.value)
    assert "GET manifest a/b:1" in str(info.value)


# ---------------------------------------------------------------------------- TLS + htpasswd

HTPASSWD_USER = "alice"
HTPASSWD_PASSWORD = "notar-htpasswd-secret"
# bcrypt (cost 4) of HTPASSWD_PASSWORD, made once with crypt.crypt(pw, crypt.mksalt(METHOD_BLOWFISH))
HTPASSWD_HASH = "$2b$04$aLqY/FfyRojghJo4uSwPV.Oj5XFS3PwBhk9J6fw4ku5xQU0QOXFAu"


@contextlib.contextmanager
def run_registry_with(workdir: Path, http: dict[str, object], auth: dict[str, object]) -> Iterator[str]:
    """A docker-registry with extra ``http`` and ``auth`` config; yields host:port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = f"{LOOPBACK}:{port}"
    config = {
        "version": "0.1",
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": host, "secret": "notar-tests-only", **http},
        "auth": auth,
    }
    (workdir / "config.yml").write_text(json.dumps(config))
    argv = ["docker-registry", "serve", str(workdir / "config.yml")]
    with Process(
        "docker-registry", argv, log=workdir / "registry.log", port=port, env=child_env(home=workdir)
    ):
        yield host


@pytest.fixture(scope="module")
def tls_registry(lab_pki: LabPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """https://127.0.0.1:PORT, certificate from the lab CA, htpasswd Basic auth."""
    workdir = tmp_path_factory.mktemp("tls-registry")
    (workdir / "htpasswd").write_text(f"{HTPASSWD_USER}:{HTPASSWD_HASH}\n")
    tls = {"tls": {"certificate": str(lab_pki.server_cert), "key": str(lab_pki.server_key)}}
    auth = {"htpasswd": {"realm": "notar-test", "path": str(workdir / "htpasswd")}}
    with run_registry_with(workdir, tls, auth) as host:
        yield f"https://{host}"


def test_tls_and_basic_auth(tls_registry: str, lab_pki: LabPKI, tmp_path: Path) -> None:
    host = tls_registry.removeprefix("https://")
    auth = base64.b64encode(f"{HTPASSWD_USER}:{HTPASSWD_PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    credentials = DockerConfigCredentials(tmp_path / "config.json")
    image = make_image("behind tls\n")
    with RegistryClient(tls_registry, verify=lab_pki.ca, credentials=credentials) as client:
        client.ping()
        push_with_client(client, "secure/app", "1", image)
        assert client.get_manifest("secure/app", "1").digest == image.manifest.digest


def test_tls_failures(tls_registry: str, lab_pki: LabPKI) -> None:
    with RegistryClient(tls_registry) as client, pytest.raises(RegistryUnavailableError) as info:
        client.ping()  # the lab CA is not in the default trust store
    assert tls_registry in str(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    with (
        RegistryClient(tls_registry, verify=lab_pki.ca) as client,
        pytest.raises(AuthenticationError) as auth,
    ):
        client.ping()
    assert "no credentials are configured" in str(auth.value)
    wrong = Credentials(HTPASSWD_USER, "wrong-htpasswd-guess")
    client = RegistryClient(tls_registry, verify=lab_pki.ca, credentials=wrong)
    with client, pytest.raises(AuthenticationError) as denied:
        client.get_manifest("secure/app", "1")
    assert "repository:secure/app:pull" in str(denied.value)
    assert "wrong-htpasswd-guess" not in str(denied.value)


# ---------------------------------------------------------------------------- token auth

SERVICE = "notar-test-registry"
ISSUER = "notar-test-issuer"


@dataclass
class TokenServer:
    """A docker token server (JWT with an x5c chain) on loopback, recording what it was asked."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    users: dict[str, str]
    url: str = ""
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def token(self, account: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = actions.split(",") if account else [a for a in actions.split(",") if a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": account,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        x5c = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": x5c})


def _token_handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            server.requests.append(query)
            header = self.headers.get("Authorization")
            server.authorizations.append(header)
            account = ""
            if header is not None:
                user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
                if server.users.get(user) != password:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                    return
                account = user
            self._answer(200, {"token": server.token(account, query.get("scope", [])), "expires_in": 300})

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TokenServer]]:
    workdir = tmp_path_factory.mktemp("token-registry")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notar test token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (workdir / "token-ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    server = TokenServer(key, cert, {"alice": "token-flow-secret"})
    httpd = ThreadingHTTPServer((LOOPBACK, 0), _token_handler(server))
    server.url = f"http://{LOOPBACK}:{httpd.server_address[1]}/token"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    auth = {
        "token": {
            "realm": server.url,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(workdir / "token-ca.pem"),
        }
    }
    try:
        with run_registry_with(workdir, {}, auth) as host:
            yield host, server
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_bearer_token_flow_with_the_real_registry(token_registry: tuple[str, TokenServer]) -> None:
    host, server = token_registry
    image = make_image("token flow\n")
    before = len(server.requests)
    with RegistryClient(host, credentials=Credentials("alice", "token-flow-secret")) as client:
        push_with_client(client, "tok/app", "1", image)
        assert client.get_manifest("tok/app", "1").digest == image.manifest.digest
        out = io.BytesIO()
        client.get_blob("tok/app", image.layers[0].digest, out)
        assert out.getvalue() == image.layers[0].data
    asked = server.requests[before:]
    scopes = [q.get("scope") for q in asked]
    # one token for pushing (pull,push) and one for pulling; each reused for its scope
    assert scopes == [["repository:tok/app:pull,push"], ["repository:tok/app:pull"]]
    assert all(q["service"] == [SERVICE] and q["account"] == ["alice"] for q in asked)
    assert all(a is not None and a.startswith("Basic ") for a in server.authorizations[before:])

    # anonymous: a pull-only token, and the registry refuses pushes with it
    with RegistryClient(host) as anonymous:
        assert anonymous.get_manifest("tok/app", "1").digest == image.manifest.digest
        with pytest.raises(AuthenticationError) as info:
            anonymous.put_manifest("tok/app", "2", image.manifest.data, OCI_MANIFEST)
    assert "repository:tok/app:pull,push" in str(info.value)

    wrong = RegistryClient(host, credentials=Credentials("alice", "not-the-password"))
    with wrong, pytest.raises(AuthenticationError) as denied:
        wrong.get_manifest("tok/app", "1")
    assert "not-the-password" not in str(denied.value)
    assert server.url in str(denied.value)
