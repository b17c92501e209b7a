"""Manifest bytes of signed digests reused for --cache-ttl, per credentials; manifest reads by the lean client.

In process: a mock upstream (httpx.MockTransport) that counts manifest reads and can demand credentials, a
fixed trust view on a clock the test moves; and a raw-socket upstream for the lean HTTP/1.1 client.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
from starlette.testclient import TestClient

from notar.gateway import GatewaySettings, SignedTag, create_app
from notar.gateway.app import GatewayApp
from notar.gateway.manifest_data import Fetched as _Fetched
from notar.gateway.manifest_reuse import RecentManifests as _RecentManifests
from tests.gateway.test_inprocess import FixedVerifier

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ONE = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"n":1}'
TWO = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"n":2}'


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """Manifests by digest; counts reads; with ``token`` set, only requests carrying it are answered."""

    def __init__(self, *manifests: bytes) -> None:
        self.manifests = {sha(m): m for m in manifests}
        self.reads: list[str] = []
        self.token: str | None = None
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        ref = request.url.path.rsplit("/", 1)[-1]
        self.reads.append(ref)
        if self.down:
            return httpx.Response(503)
        if self.token is not None and request.headers.get("authorization") != self.token:
            return httpx.Response(
                401,
                json={"errors": [{"code": "UNAUTHORIZED"}]},
                headers={"WWW-Authenticate": 'Bearer realm="http://auth/token"'},
            )
        if ref in self.manifests:
            return httpx.Response(200, content=self.manifests[ref], headers={"Content-Type": OCI_MANIFEST})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})


def gateway(registry: Registry, tags: dict[str, bytes], *, ttl: float = 5.0) -> tuple[TestClient, Clock]:
    clock = Clock()
    verifier = FixedVerifier({t: SignedTag(sha(d), len(d), "targets/releases") for t, d in tags.items()})
    verifier.clock, verifier.ttl = clock, ttl
    settings = GatewaySettings(upstream="http://upstream:5000", gun_prefix="gw:5001")
    app = create_app(settings, verifier=verifier, transport=httpx.MockTransport(registry))
    return TestClient(app), clock


def test_a_signed_manifest_is_read_upstream_once_per_ttl_and_credentials() -> None:
    reg = Registry(ONE)
    c, clock = gateway(reg, {"1.0": ONE})
    with c:
        for method in ("GET", "HEAD", "GET"):
            r = c.request(method, "/v2/a/b/manifests/1.0")
            assert r.status_code == 200 and r.headers["docker-content-digest"] == sha(ONE)
            assert r.content == (ONE if method == "GET" else b"")
        r = c.get(f"/v2/a/b/manifests/{sha(ONE)}")  # by digest: the same bytes
        assert r.status_code == 200 and r.content == ONE
        assert reg.reads == [sha(ONE)]
        # other credentials: read again, for them
        assert c.get("/v2/a/b/manifests/1.0", headers={"Authorization": "Bearer x"}).content == ONE
        assert c.get("/v2/a/b/manifests/1.0", headers={"Authorization": "Bearer x"}).content == ONE
        assert reg.reads == [sha(ONE)] * 2
        clock.now += 5.0  # --cache-ttl over: the trust data and the registry are asked again
        reg.down = True
        assert c.get("/v2/a/b/manifests/1.0").status_code == 502
        reg.down = False
        assert c.get("/v2/a/b/manifests/1.0").content == ONE
        assert reg.reads == [sha(ONE)] * 4


def test_no_reuse_with_cache_ttl_zero() -> None:
    reg = Registry(ONE)
    c, _ = gateway(reg, {"1.0": ONE}, ttl=0.0)
    with c:
        for _ in range(3):
            assert c.get("/v2/a/b/manifests/1.0").content == ONE
    assert reg.reads == [sha(ONE)] * 3


def test_what_a_client_with_credentials_got_is_not_served_to_one_without() -> None:
    reg = Registry(ONE)
    reg.token = "Bearer good"
    c, _ = gateway(reg, {"1.0": ONE})
    with c:
        ok = c.get("/v2/a/b/manifests/1.0", headers={"Authorization": "Bearer good"})
        assert ok.status_code == 200 and ok.content == ONE
        for headers in ({}, {"Authorization": "Bearer other"}, {"Cookie": "session=x"}):
            r = c.get("/v2/a/b/manifests/1.0", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer ")
            assert ONE not in r.content


def test_the_trust_data_still_decides_the_digest_of_a_tag() -> None:
    reg = Registry(ONE, TWO)
    c, clock = gateway(reg, {"1.0": ONE})
    with c:
        assert c.get("/v2/a/b/manifests/1.0").content == ONE
        verifier = c.app.verifier  # type: ignore[attr-defined]
        verifier.tags = {"1.0": SignedTag(sha(TWO), len(TWO), "targets/releases")}
        clock.now += 5.0  # the next request verifies again and sees 1.0 signed as TWO
        assert c.get("/v2/a/b/manifests/1.0").content == TWO
        verifier.tags = {}
        clock.now += 5.0
        r = c.get("/v2/a/b/manifests/1.0")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert c.get(f"/v2/a/b/manifests/{sha(ONE)}").status_code == 404  # no longer signed


def test_recent_manifests_are_bounded_oldest_first() -> None:
    clock = Clock()
    verifier = FixedVerifier({})
    verifier.clock = clock
    recent = _RecentManifests(verifier, max_bytes=250, max_entries=3)
    scope: dict[str, Any] = {"headers": []}
    entries = [_Fetched(bytes([i]) * 100, OCI_MANIFEST, f"sha256:{i}") for i in range(4)]
    for i, fetched in enumerate(entries):
        recent.put(recent.key(scope, "a/b", fetched.digest), fetched)
        clock.now += 1
        assert len(recent) == min(i + 1, 2)  # 250 bytes: two of 100
    assert recent.get(recent.key(scope, "a/b", "sha256:3")) is entries[3]
    assert recent.get(recent.key(scope, "a/b", "sha256:1")) is None
    recent.put(recent.key(scope, "a/b", "huge"), _Fetched(b"x" * 251, OCI_MANIFEST, "huge"))
    assert recent.get(recent.key(scope, "a/b", "huge")) is None  # larger than the whole budget
    clock.now += 5.0
    assert recent.get(recent.key(scope, "a/b", "sha256:3")) is None  # expired


# -- the lean client: manifest reads against a raw-socket upstream ----------------------------------------
class RawRegistry:
    """HTTP/1.1 with keep-alive: ONE by digest (TWO's bytes for TWO's digest with ``lie``), 401 without
    ``authorization``, 404 otherwise; counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.lie = False
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                self.requests.append(head)
                target = head.split(b" ", 2)[1]
                if b"\r\nauthorization:" not in head.lower():
                    body, status, extra = (
                        b'{"errors":[]}',
                        b"401 Unauthorized",
                        b"Www-Authenticate: Basic\r\n",
                    )
                elif target.endswith(sha(ONE).encode()):
                    body, status, extra = ONE, b"200 OK", b"Content-Type: %s\r\n" % OCI_MANIFEST.encode()
                elif target.endswith(sha(TWO).encode()) and self.lie:
                    body, status, extra = ONE, b"200 OK", b""
                else:
                    body, status, extra = b'{"errors":[]}', b"404 Not Found", b""
                writer.write(
                    b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body)
                )
                await writer.drain()
        finally:
            writer.close()


async def call(
    app: GatewayApp, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"gw:5001"), *headers],
        "scheme": "http",
        "server": ("gw", 5001),
    }
    await app(scope, receive, send)
    return (
        messages[0]["status"],
        dict(messages[0]["headers"]),
        b"".join(m.get("body", b"") for m in messages[1:]),
    )


def test_manifest_reads_by_the_lean_client() -> None:
    async def main() -> None:
        upstream = RawRegistry()
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = GatewaySettings(upstream=f"http://127.0.0.1:{port}", gun_prefix="gw:5001")
        tags = {
            "1.0": SignedTag(sha(ONE), len(ONE), "targets"),
            "2.0": SignedTag(sha(TWO), len(TWO), "targets"),
        }
        app = create_app(settings, verifier=FixedVerifier(tags))
        assert app.blobs is not None
        try:
            auth = [(b"authorization", b"Basic a")]
            status, headers, body = await call(app, "/v2/a/b/manifests/1.0", auth)
            assert (status, body, headers[b"docker-content-digest"]) == (200, ONE, sha(ONE).encode())
            status, _, body = await call(app, "/v2/a/b/manifests/1.0", [(b"authorization", b"Basic b")])
            assert (status, body) == (200, ONE)
            # the auth challenge is relayed, the 404 read to its end: one kept-alive connection for all
            status, headers, _ = await call(app, "/v2/a/b/manifests/1.0", [])
            assert status == 401 and headers[b"www-authenticate"] == b"Basic"
            status, _, body = await call(app, "/v2/a/b/manifests/2.0", auth)
            assert status == 404 and b"MANIFEST_UNKNOWN" in body
            assert upstream.connections == 1 and len(upstream.requests) == 4
            assert b"\r\naccept: " in upstream.requests[0]
            upstream.lie = True  # other bytes for a signed digest: refused, never served
            status, _, body = await call(app, "/v2/a/b/manifests/2.0", auth)
            assert status == 403 and ONE not in body
        finally:
            await app.aclose()
            server.close()

    asyncio.run(main())


def test_a_cache_key_costs_the_same_whatever_credentials_a_client_sends() -> None:
    """Red-team finding: keys held the raw Cookie/Authorization values outside the byte budget (a 4 MiB
    Cookie per request: +450 MB for 100 requests). They hold a hash of names and values now."""

    def key(*headers: tuple[bytes, bytes]) -> tuple[str, str, bytes]:
        return _RecentManifests.key({"headers": list(headers)}, "team/app", "sha256:" + "a" * 64)

    big = key((b"cookie", b"x" * (4 << 20)))
    assert len(big[2]) == 32
    assert key((b"cookie", b"Bearer A")) != key((b"authorization", b"Bearer A"))
    assert key((b"Authorization", b"Bearer A")) == key((b"authorization", b"Bearer A"))
    assert key((b"authorization", b"Bearer A")) != key((b"authorization", b"Bearer B"))
    assert key() != key((b"authorization", b""))  # no header is not an empty one
    assert key((b"cookie", b"a"), (b"cookie", b"b")) != key((b"cookie", b"ab"))
