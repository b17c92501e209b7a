"""RegistryClient against the in-process fake: attacks, the auth flows, pagination, error mapping."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from notar.registry import (
    USER_AGENT,
    AuthenticationError,
    BlobNotFoundError,
    Credentials,
    Descriptor,
    DigestMismatchError,
    DockerConfigCredentials,
    Manifest,
    ManifestNotFoundError,
    RegistryClient,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
    RepositoryNotFoundError,
    UnsupportedManifestError,
)
from tests.registry.fakes import AUTH_HOST, REGISTRY_HOST, FakeRegistry, creds, errors_body, sha256
from tests.registry.images import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, make_image, make_index

REPO = "team/app"
URL = f"https://{REGISTRY_HOST}"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def fake() -> FakeRegistry:
    f = FakeRegistry()
    image = make_image()
    f.add_manifest(REPO, "1.0", image.manifest.data, OCI_MANIFEST)
    for blob in image.blobs:
        f.add_blob(blob.data)
    return f


def manifest_path(ref: str) -> str:
    return f"/v2/{REPO}/manifests/{ref}"


def blob_path(digest: str) -> str:
    return f"/v2/{REPO}/blobs/{digest}"


# ---------------------------------------------------------------------------- manifests


def test_get_and_head_manifest(fake: FakeRegistry) -> None:
    image = make_image()
    with fake.client() as client:
        by_tag = client.get_manifest(REPO, "1.0")
        by_digest = client.get_manifest(REPO, image.manifest.digest)
        head = client.head_manifest(REPO, "1.0")
    assert by_tag.data == image.manifest.data
    assert by_tag.digest == image.manifest.digest == by_digest.digest == head.digest
    assert by_tag.size == len(image.manifest.data) == head.size
    assert by_tag.media_type == OCI_MANIFEST == head.media_type
    assert not by_tag.is_index
    assert [d.digest for d in by_tag.references()] == [b.digest for b in image.blobs]
    first = fake.registry_requests()[0]
    assert first.headers["user-agent"] == USER_AGENT == "notar/0.1.0"
    assert first.headers["accept-encoding"] == "identity"
    accepted = {t.strip() for t in first.headers["accept"].split(",")}
    assert accepted == {
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }


def test_registry_lying_about_docker_content_digest(fake: FakeRegistry) -> None:
    data = make_image().manifest.data
    headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256(b"something else")}
    fake.override("GET", manifest_path("1.0"), lambda r: Response(data, headers=headers))
    with fake.client() as client, pytest.raises(DigestMismatchError) as info:
        client.get_manifest(REPO, "1.0")
    assert URL in str(info.value)
    assert "Docker-Content-Digest says " + sha256(b"something else") in str(info.value)


@pytest.mark.parametrize("echo_header", [True, False])
def test_registry_serving_other_content_for_a_digest(fake: FakeRegistry, echo_header: bool) -> None:
    wanted = make_image().manifest.digest
    other = make_image("evil\n").manifest.data
    headers = {"Content-Type": OCI_MANIFEST}
    if echo_header:
        headers["Docker-Content-Digest"] = wanted  # lies consistently
    fake.override("GET", manifest_path(wanted), lambda r: Response(other, headers=headers))
    with fake.client() as client, pytest.raises(DigestMismatchError, match="hashes to " + sha256(other)):
        client.get_manifest(REPO, wanted)


def test_head_by_digest_with_another_digest(fake: FakeRegistry) -> None:
    wanted = make_image().manifest.digest
    headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256(b"x"), "Content-Length": "5"}
    fake.override("HEAD", manifest_path(wanted), lambda r: Response(b"", headers=headers))
    with fake.client() as client, pytest.raises(DigestMismatchError):
        client.head_manifest(REPO, wanted)


_CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 2}


@pytest.mark.parametrize(
    ("content_type", "body", "error", "message"),
    [
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            {"schemaVersion": 1},
            UnsupportedManifestError,
            "schema 1",
        ),
        ("application/json", {"schemaVersion": 1, "fsLayers": []}, UnsupportedManifestError, "schema 1"),
        (OCI_MANIFEST, {"schemaVersion": 3}, UnsupportedManifestError, "schemaVersion 3"),
        ("text/html", {"schemaVersion": 2}, UnsupportedManifestError, "'text/html'"),
        (OCI_MANIFEST, {"schemaVersion": 2, "mediaType": OCI_INDEX}, RegistryProtocolError, "but mediaType"),
        (OCI_MANIFEST, ["not", "an", "object"], RegistryProtocolError, "not a JSON object"),
        # no mediaType in the body: the shape decides, a Content-Type that contradicts it is an error
        (
            OCI_INDEX,
            {"schemaVersion": 2, "config": _CONFIG, "layers": []},
            RegistryProtocolError,
            "does not fit",
        ),
        (OCI_MANIFEST, {"schemaVersion": 2, "manifests": []}, RegistryProtocolError, "does not fit"),
        (OCI_MANIFEST, {"schemaVersion": 2}, RegistryProtocolError, "neither a config nor"),
        (OCI_MANIFEST, "[" * 100_000, RegistryProtocolError, "not a JSON object"),
    ],
)
def test_bad_manifests(
    fake: FakeRegistry, content_type: str, body: object, error: type[RegistryError], message: str
) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    fake.override(
        "GET", manifest_path("1.0"), lambda r: Response(data, headers={"Content-Type": content_type})
    )
    with fake.client() as client, pytest.raises(error, match=message):
        client.get_manifest(REPO, "1.0")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"schemaVersion": 2, "manifests": []}, OCI_INDEX),
        ({"schemaVersion": 2, "config": _CONFIG, "layers": []}, OCI_MANIFEST),
    ],
)
def test_manifest_without_media_type_is_typed_by_its_shape(
    fake: FakeRegistry, body: dict[str, object], expected: str
) -> None:
    data = json.dumps(body).encode()
    fake.override(
        "GET", manifest_path("1.0"), lambda r: Response(data, headers={"Content-Type": "application/json"})
    )
    with fake.client() as client:
        manifest = client.get_manifest(REPO, "1.0")
    assert manifest.media_type == expected
    assert manifest.references() == (
        [] if expected == OCI_INDEX else [Descriptor(_CONFIG["mediaType"], _CONFIG["digest"], 2)]
    )


def test_references_need_the_fields_of_their_type() -> None:
    index = Manifest(sha256(b"{}"), 2, OCI_INDEX, b"{}")
    with pytest.raises(RegistryProtocolError, match="no manifests list"):
        index.references()
    image = Manifest(sha256(b"{}"), 2, OCI_MANIFEST, b"{}")
    with pytest.raises(RegistryProtocolError, match="no config descriptor"):
        image.references()


def test_generic_content_type_uses_the_media_type_field(fake: FakeRegistry) -> None:
    data = make_image(docker=True).manifest.data
    fake.override(
        "GET", manifest_path("1.0"), lambda r: Response(data, headers={"Content-Type": "application/json"})
    )
    with fake.client() as client:
        assert client.get_manifest(REPO, "1.0").media_type == DOCKER_MANIFEST


def test_manifest_size_cap(fake: FakeRegistry) -> None:
    big = json.dumps({"schemaVersion": 2, "pad": "x" * 5000}).encode()
    fake.override(
        "GET", manifest_path("big"), lambda r: Response(big, headers={"Content-Type": OCI_MANIFEST})
    )
    fake.override(
        "GET",
        manifest_path("streamed"),
        lambda r: StreamingResponse(iter([big[:3000], big[3000:]]), headers={"Content-Type": OCI_MANIFEST}),
    )
    with fake.client(max_manifest_size=4096) as client:
        with pytest.raises(RegistryProtocolError, match="more than the limit of 4096"):
            client.get_manifest(REPO, "big")  # refused from Content-Length
        with pytest.raises(RegistryProtocolError, match="more than the limit of 4096"):
            client.get_manifest(REPO, "streamed")  # refused while reading


def test_put_manifest(fake: FakeRegistry) -> None:
    image = make_image("put\n")
    with fake.client() as client:
        assert client.put_manifest(REPO, "2.0", image.manifest.data, OCI_MANIFEST) == image.manifest.digest
        assert client.get_manifest(REPO, "2.0").data == image.manifest.data
        with pytest.raises(DigestMismatchError):  # refused before sending
            client.put_manifest(REPO, sha256(b"other"), image.manifest.data, OCI_MANIFEST)
        with pytest.raises(UnsupportedManifestError):
            client.put_manifest(REPO, "x", b"{}", "application/vnd.docker.distribution.manifest.v1+json")
    puts = [r for r in fake.registry_requests() if r.method == "PUT"]
    assert len(puts) == 1
    assert puts[0].headers["content-type"] == OCI_MANIFEST


def test_put_manifest_stored_under_another_digest(fake: FakeRegistry) -> None:
    headers = {"Docker-Content-Digest": sha256(b"else")}
    fake.override("PUT", manifest_path("2.0"), lambda r: Response(status_code=201, headers=headers))
    with fake.client() as client, pytest.raises(DigestMismatchError, match="stored it as"):
        client.put_manifest(REPO, "2.0", make_image().manifest.data, OCI_MANIFEST)


# ---------------------------------------------------------------------------- blobs: attacks


def layer() -> tuple[str, bytes]:
    data = make_image().layers[0].data
    return sha256(data), data


def test_get_blob(fake: FakeRegistry) -> None:
    digest, data = layer()
    out = io.BytesIO()
    with fake.client() as client:
        assert client.get_blob(REPO, digest, out, expected_size=len(data)) == len(data)
        assert client.blob_exists(REPO, digest) == len(data)
        assert client.blob_exists(REPO, sha256(b"absent")) is None
    assert out.getvalue() == data


def test_corrupt_blob(fake: FakeRegistry) -> None:
    digest, data = layer()
    corrupt = bytes([data[0] ^ 1]) + data[1:]
    fake.override("GET", blob_path(digest), lambda r: Response(corrupt))
    with fake.client() as client, pytest.raises(DigestMismatchError, match="hashes to " + sha256(corrupt)):
        client.get_blob(REPO, digest, io.BytesIO())


def test_truncated_blob_with_full_content_length(fake: FakeRegistry) -> None:
    digest, data = layer()
    half = data[: len(data) // 2]
    fake.override(
        "GET", blob_path(digest), lambda r: Response(half, headers={"Content-Length": str(len(data))})
    )
    with (
        fake.client() as client,
        pytest.raises(DigestMismatchError, match=f"truncated: {len(half)} of {len(data)}"),
    ):
        client.get_blob(REPO, digest, io.BytesIO())


def test_truncated_blob_without_content_length(fake: FakeRegistry) -> None:
    digest, data = layer()
    fake.override("GET", blob_path(digest), lambda r: StreamingResponse(iter([data[:10]])))
    with fake.client() as client, pytest.raises(DigestMismatchError):
        client.get_blob(REPO, digest, io.BytesIO())
    with fake.client() as client, pytest.raises(DigestMismatchError, match="truncated"):
        client.get_blob(REPO, digest, io.BytesIO(), expected_size=len(data))


def test_oversize_blob(fake: FakeRegistry) -> None:
    digest, data = layer()
    fake.override("GET", blob_path(digest), lambda r: StreamingResponse(iter([data, b"and more"])))
    out = io.BytesIO()
    with (
        fake.client() as client,
        pytest.raises(DigestMismatchError, match=f"more than the expected {len(data)}"),
    ):
        client.get_blob(REPO, digest, out, expected_size=len(data))
    assert len(out.getvalue()) <= len(data)  # stopped at the limit


def test_announced_size_differs_from_expected(fake: FakeRegistry) -> None:
    digest, data = layer()
    out = io.BytesIO()
    with fake.client() as client, pytest.raises(DigestMismatchError, match="announced"):
        client.get_blob(REPO, digest, out, expected_size=len(data) + 1)
    assert out.getvalue() == b""  # nothing read


def test_redirect_to_another_host_drops_authorization(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    digest, data = layer()
    fake.override(
        "GET", blob_path(digest), lambda r: _challenge_or(fake, r, _redirect("https://cdn.test/b/1"))
    )
    fake.override("GET", "/b/1", lambda r: Response(data))
    out = io.BytesIO()
    with fake.client(credentials=creds()) as client:
        client.get_blob(REPO, digest, out)
    assert out.getvalue() == data
    cdn = [r for r in fake.requests if r.host == "cdn.test"]
    assert len(cdn) == 1
    assert "authorization" not in cdn[0].headers
    to_registry = [r for r in fake.registry_requests() if r.path == blob_path(digest)]
    assert to_registry[-1].headers["authorization"].startswith("Bearer ")


def _redirect(location: str) -> Response:
    return Response(status_code=307, headers={"Location": location})


def _challenge_or(fake: FakeRegistry, request: Request, response: Response) -> Response:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        header = f'Bearer realm="https://{AUTH_HOST}/token",service="{REGISTRY_HOST}",scope="repository:{REPO}:pull"'
        return Response(status_code=401, headers={"WWW-Authenticate": header})
    return response


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "refusing to follow a file: URL"),
        ("ftp://x.test/blob", "refusing to follow a ftp: URL"),
        ("http://cdn.test/blob", "from https to plain http"),
        ("/loop", "more than 10 redirects"),
    ],
)
def test_bad_redirects(fake: FakeRegistry, location: str, message: str) -> None:
    digest, _ = layer()
    fake.override("GET", blob_path(digest), lambda r: _redirect(location))
    fake.override("GET", "/loop", lambda r: _redirect("/loop"))
    with fake.client() as client, pytest.raises(RegistryProtocolError, match=message):
        client.get_blob(REPO, digest, io.BytesIO())


# ---------------------------------------------------------------------------- blobs: upload


def test_chunked_upload(fake: FakeRegistry) -> None:
    data = bytes(range(25))
    digest = sha256(data)
    with fake.client() as client:
        assert client.push_blob(REPO, digest, io.BytesIO(data), len(data), chunk_size=10) == digest
    assert fake.blobs[digest] == data
    patches = [r for r in fake.registry_requests() if r.method == "PATCH"]
    assert [p.headers["content-range"] for p in patches] == ["0-9", "10-19", "20-24"]
    assert [p.body for p in patches] == [data[:10], data[10:20], data[20:]]
    assert all(p.headers["content-type"] == "application/octet-stream" for p in patches)
    # every request went to the Location the previous answer gave
    assert [p.query["_state"] for p in patches] == [["s0"], ["s10"], ["s20"]]
    [put] = [r for r in fake.registry_requests() if r.method == "PUT"]
    assert put.query == {"_state": ["s25"], "digest": [digest]}
    assert put.body == b""


def test_monolithic_upload(fake: FakeRegistry) -> None:
    data = b"small blob"
    digest = sha256(data)
    with fake.client() as client:
        client.push_blob(REPO, digest, data, len(data))
    methods = [r.method for r in fake.registry_requests()]
    assert methods == ["HEAD", "POST", "PUT"]
    assert fake.registry_requests()[-1].body == data


@pytest.mark.parametrize("chunk_size", [4, 1024])
@pytest.mark.parametrize(
    ("source", "size", "message"),
    [(b"other content", 13, "hashes to"), (b"short", 13, "the source has 5 bytes")],
)
def test_upload_of_wrong_content_is_never_committed(
    fake: FakeRegistry, chunk_size: int, source: bytes, size: int, message: str
) -> None:
    digest = sha256(b"wanted content")
    with fake.client() as client, pytest.raises(DigestMismatchError, match=message):
        client.push_blob(REPO, digest, io.BytesIO(source), size, chunk_size=chunk_size)
    assert digest not in fake.blobs
    assert fake.uploads == {}  # the session was cancelled
    assert fake.registry_requests()[-1].method == "DELETE"
    assert not any(r.method == "PUT" for r in fake.registry_requests())
    sent = sum(len(r.body) for r in fake.registry_requests() if r.method == "PATCH")
    assert sent < size  # the last chunk never left


def test_upload_skips_existing_blob(fake: FakeRegistry) -> None:
    digest, data = layer()
    with fake.client() as client:
        client.push_blob(REPO, digest, _Unreadable(), len(data))
        with pytest.raises(DigestMismatchError, match="has it with"):
            client.push_blob(REPO, digest, _Unreadable(), len(data) + 1)
    assert [r.method for r in fake.registry_requests()] == ["HEAD", "HEAD"]


def test_cross_repository_mount(fake: FakeRegistry) -> None:
    digest, data = layer()
    with fake.client() as client:
        client.push_blob("team/other", digest, _Unreadable(), len(data), mount_from=REPO, skip_existing=False)
    [post] = [r for r in fake.registry_requests() if r.method == "POST"]
    assert post.query == {"mount": [digest], "from": [REPO]}


class _Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the source must not be read")


# ---------------------------------------------------------------------------- tags, errors


def test_tags_pagination(fake: FakeRegistry) -> None:
    data = make_image().manifest.data
    for tag in ["b", "e", "a", "d", "c"]:
        fake.add_manifest(REPO, tag, data, OCI_MANIFEST)
    with fake.client() as client:
        assert client.tags(REPO, page_size=2) == ["1.0", "a", "b", "c", "d", "e"]
    pages = [r.query for r in fake.registry_requests()]
    assert pages == [{"n": ["2"]}, {"n": ["2"], "last": ["a"]}, {"n": ["2"], "last": ["c"]}]


def test_tags_pagination_loop(fake: FakeRegistry) -> None:
    link = {"Link": f'</v2/{REPO}/tags/list?n=1>; rel="next"'}
    fake.override("GET", f"/v2/{REPO}/tags/list", lambda r: JSONResponse({"tags": ["x"]}, headers=link))
    with fake.client() as client, pytest.raises(RegistryProtocolError, match="loop"):
        client.tags(REPO, page_size=1)


def test_not_found_errors(fake: FakeRegistry) -> None:
    with fake.client() as client:
        with pytest.raises(ManifestNotFoundError) as m:
            client.get_manifest(REPO, "nope")
        with pytest.raises(ManifestNotFoundError):
            client.head_manifest(REPO, "nope")
        with pytest.raises(BlobNotFoundError) as b:
            client.get_blob(REPO, sha256(b"absent"), io.BytesIO())
        with pytest.raises(RepositoryNotFoundError):
            client.tags("team/nothing")
    assert m.value.codes == ("MANIFEST_UNKNOWN",)
    assert m.value.status_code == 404
    assert "MANIFEST_UNKNOWN: manifest unknown ({'Tag': 'nope'})" in str(m.value)
    assert b.value.codes == ("BLOB_UNKNOWN",)


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, RegistryUnavailableError), (503, RegistryUnavailableError), (429, RegistryUnavailableError)],
)
def test_server_errors(fake: FakeRegistry, status: int, error: type[RegistryError]) -> None:
    body = errors_body("UNAVAILABLE", "try later", {"why": "maintenance"})
    fake.override("GET", manifest_path("1.0"), lambda r: JSONResponse(body, status))
    with fake.client() as client, pytest.raises(error) as info:
        client.get_manifest(REPO, "1.0")
    assert str(info.value) == (
        f"registry {URL}: GET manifest {REPO}:1.0: HTTP {status}: UNAVAILABLE: try later ({{'why': 'maintenance'}})"
    )


def test_client_errors_carry_the_envelope(fake: FakeRegistry) -> None:
    body = errors_body("MANIFEST_INVALID", "manifest invalid", "bad layer")
    fake.override("PUT", manifest_path("x"), lambda r: JSONResponse(body, 400))
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.put_manifest(REPO, "x", b"{}", OCI_MANIFEST)
    assert type(info.value) is RegistryError
    assert info.value.codes == ("MANIFEST_INVALID",)
    assert "manifest invalid (bad layer)" in str(info.value)


def test_transport_failures_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    refused = RegistryClient("reg.example", transport=httpx.MockTransport(refuse))
    with (
        refused,
        pytest.raises(RegistryUnavailableError, match="https://reg.example.*cannot connect: refused"),
    ):
        refused.ping()
    timing_out = RegistryClient("reg.example", transport=httpx.MockTransport(slow))
    with timing_out, pytest.raises(RegistryUnavailableError, match="timed out"):
        timing_out.get_manifest(REPO, "1.0")


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="path"):
        RegistryClient("https://reg.example/prefix")
    with httpx.Client() as http, pytest.raises(TypeError):
        RegistryClient(
            "reg.example", client=http, transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )
    assert RegistryClient("index.docker.io").base_url == "https://registry-1.docker.io"
    assert (
        RegistryClient("10.0.0.1:5000", insecure_registries=["10.0.0.0/8"]).base_url == "http://10.0.0.1:5000"
    )
    assert RegistryClient.for_reference("localhost:5000/a/b:1").base_url == "http://localhost:5000"


def test_ping(fake: FakeRegistry) -> None:
    with fake.client() as client:
        client.ping()
    fake.override("GET", "/v2/", lambda r: Response(status_code=404))
    with fake.client() as client, pytest.raises(RegistryProtocolError, match="not a registry v2 API"):
        client.ping()


# ---------------------------------------------------------------------------- bearer tokens


def token_query(fake: FakeRegistry, i: int = 0) -> dict[str, list[str]]:
    return fake.token_requests()[i].query


def test_bearer_flow(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    with fake.client(credentials=creds()) as client:
        client.get_manifest(REPO, "1.0")
        assert [r.host for r in fake.requests] == [REGISTRY_HOST, AUTH_HOST, REGISTRY_HOST]
        first, token_request, retry = fake.requests
        assert "authorization" not in first.headers  # anonymous first, like docker
        assert token_request.method == "GET"
        assert token_request.path == "/token"
        assert token_request.query == {
            "service": [REGISTRY_HOST],
            "scope": [f"repository:{REPO}:pull"],
            "account": ["alice"],
        }
        basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        assert token_request.headers["authorization"] == f"Basic {basic}"
        assert retry.headers["authorization"] == "Bearer tok-0"

        # the token is reused for the same scope: no new token request, no 401
        client.head_manifest(REPO, "1.0")
        client.get_blob(REPO, layer()[0], io.BytesIO())
        assert len(fake.token_requests()) == 1
        assert len(fake.registry_requests()) == 4

        # another repository is another scope
        fake.add_manifest("team/other", "1", make_image().manifest.data, OCI_MANIFEST)
        client.get_manifest("team/other", "1")
        assert token_query(fake, 1)["scope"] == ["repository:team/other:pull"]


def test_token_expiry(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.token_ttl = 100
    fake.token_field = "access_token"
    now = [0.0]
    with fake.client(credentials=creds(), clock=lambda: now[0]) as client:
        client.get_manifest(REPO, "1.0")
        now[0] = 99.0
        client.get_manifest(REPO, "1.0")
        assert len(fake.token_requests()) == 1
        now[0] = 100.0
        client.get_manifest(REPO, "1.0")
        assert len(fake.token_requests()) == 2
        # the expired token is not even tried
        assert "authorization" not in fake.registry_requests()[-2].headers


def test_bad_credentials(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    wrong = "wrong-password-123"
    with fake.client(credentials=creds(password=wrong)) as client, pytest.raises(AuthenticationError) as info:
        client.get_manifest(REPO, "1.0")
    message = str(info.value)
    assert URL in message
    assert f"repository:{REPO}:pull" in message
    assert "user 'alice'" in message
    assert wrong not in message  # the fake token server echoed it; we masked it
    assert "***" in message
    assert info.value.status_code == 401


def test_rejected_token_is_retried_once(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.reject_all_tokens = True
    with fake.client(credentials=creds()) as client, pytest.raises(AuthenticationError) as info:
        client.get_manifest(REPO, "1.0")
    assert len(fake.registry_requests()) == 2
    assert len(fake.token_requests()) == 1
    assert f"authentication failed for scope repository:{REPO}:pull" in str(info.value)
    assert PASSWORD not in str(info.value) and "tok-0" not in str(info.value)


def test_anonymous_token(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    with fake.client() as client:
        client.get_manifest(REPO, "1.0")
    [token_request] = fake.token_requests()
    assert "authorization" not in token_request.headers
    assert "account" not in token_request.query
    fake.allow_anonymous = False
    with fake.client() as client, pytest.raises(AuthenticationError, match="refused anonymous access"):
        client.get_manifest(REPO, "1.0")


def test_challenge_without_scope_uses_ours(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.challenge_scope = False
    with fake.client(credentials=creds()) as client:
        client.get_manifest(REPO, "1.0")
    assert token_query(fake)["scope"] == [f"repository:{REPO}:pull"]


def test_push_scopes(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    data = b"pushed with a token"
    with fake.client(credentials=creds()) as client:
        client.push_blob(REPO, sha256(data), data, len(data))
        assert fake.blobs[sha256(data)] == data
        assert [q["scope"] for q in (token_query(fake, i) for i in range(len(fake.token_requests())))] == [
            [f"repository:{REPO}:pull,push"]
        ]
        digest, size = layer()[0], len(layer()[1])
        client.push_blob("team/copy", digest, _Unreadable(), size, mount_from=REPO, skip_existing=False)
        assert token_query(fake, 1)["scope"] == [f"repository:{REPO}:pull", "repository:team/copy:pull,push"]


def test_identity_token(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.refresh_tokens["refresh-xyz"] = "alice"
    with fake.client(credentials=Credentials(identity_token="refresh-xyz")) as client:
        client.get_manifest(REPO, "1.0")
    [token_request] = fake.token_requests()
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert form == {
        "grant_type": "refresh_token",
        "client_id": "notar",
        "refresh_token": "refresh-xyz",
        "service": REGISTRY_HOST,
        "scope": f"repository:{REPO}:pull",
    }
    stale = Credentials(identity_token="stale")
    with (
        fake.client(credentials=stale) as client,
        pytest.raises(AuthenticationError, match="invalid_grant") as info,
    ):
        client.get_manifest(REPO, "1.0")
    assert "bad refresh token" in str(info.value)
    assert "stale" not in str(info.value)


def test_credentials_over_plain_http_are_refused(fake: FakeRegistry) -> None:
    fake.auth = "bearer"
    fake.realm = f"http://{AUTH_HOST}/token"
    with (
        fake.client(credentials=creds()) as client,
        pytest.raises(AuthenticationError, match="over plain http"),
    ):
        client.get_manifest(REPO, "1.0")
    assert fake.token_requests() == []
    with fake.client() as client:  # anonymous: nothing to leak
        client.get_manifest(REPO, "1.0")


def test_docker_config_credentials_end_to_end(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.auth = "bearer"
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {REGISTRY_HOST: {"auth": auth}}}))
    with fake.client(credentials=DockerConfigCredentials(tmp_path / "config.json")) as client:
        client.get_manifest(REPO, "1.0")
    assert token_query(fake)["account"] == ["alice"]


def test_no_secrets_in_logs(fake: FakeRegistry, caplog: pytest.LogCaptureFixture) -> None:
    fake.auth = "bearer"
    caplog.set_level(logging.DEBUG)
    with fake.client(credentials=creds()) as client:
        client.get_manifest(REPO, "1.0")
    assert "token request" in caplog.text
    assert PASSWORD not in caplog.text
    assert "tok-0" not in caplog.text
    assert base64.b64encode(f"alice:{PASSWORD}".encode()).decode() not in caplog.text


# ---------------------------------------------------------------------------- basic auth and others


def test_basic_auth(fake: FakeRegistry) -> None:
    fake.auth = "basic"
    with fake.client(credentials=creds()) as client:
        client.get_manifest(REPO, "1.0")
        client.get_manifest(REPO, "1.0")
    requests = fake.registry_requests()
    assert len(requests) == 3  # 401, retry, then Basic sent right away
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert [r.headers.get("authorization") for r in requests] == [None, basic, basic]
    assert fake.token_requests() == []


def test_basic_auth_failures(fake: FakeRegistry) -> None:
    fake.auth = "basic"
    with fake.client() as client, pytest.raises(AuthenticationError, match="no credentials are configured"):
        client.get_manifest(REPO, "1.0")
    with (
        fake.client(credentials=creds(password="nope-nope")) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.get_manifest(REPO, "1.0")
    assert "nope-nope" not in str(info.value)


def test_forbidden_and_unknown_schemes(fake: FakeRegistry) -> None:
    fake.override(
        "GET",
        manifest_path("1.0"),
        lambda r: JSONResponse(errors_body("DENIED", "requested access denied"), 403),
    )
    with (
        fake.client() as client,
        pytest.raises(AuthenticationError, match="access denied for scope .*DENIED"),
    ):
        client.get_manifest(REPO, "1.0")
    fake.override(
        "GET",
        manifest_path("1.0"),
        lambda r: Response(status_code=401, headers={"WWW-Authenticate": "Negotiate"}),
    )
    with fake.client() as client, pytest.raises(AuthenticationError, match="401 with negotiate"):
        client.get_manifest(REPO, "1.0")


def test_index_manifest(fake: FakeRegistry) -> None:
    index = make_index([make_image("a", arch="amd64"), make_image("b", arch="arm64")])
    fake.add_manifest(REPO, "multi", index.manifest.data, OCI_INDEX)
    with fake.client() as client:
        manifest = client.get_manifest(REPO, "multi")
    assert manifest.is_index
    assert [d.digest for d in manifest.references()] == [i.manifest.digest for i in index.images]
