"""The signature checks in process (httpx.MockTransport upstream): cached for the TTL and bounded, shared by
concurrent requests, never cached when they fail, cut off at the deadline -- always failing closed."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from notar.client import TrustServer
from notar.cosign import append_signature, sign_image
from notar.crypto import PrivateKey
from notar.gateway import GatewaySettings, TrustPolicy, TrustVerifier, create_app
from notar.gateway.formats import Format, Requirements
from notar.gateway.proxy import UpstreamProxy
from notar.gateway.signatures import SignatureVerifier, UpstreamReads
from notar.notation import Descriptor
from notar.signing.verification import load_cosign_keys
from tests.gateway.signing import CosignSigner

IMAGE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()
OCI = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Upstream:
    """A registry holding IMAGE under tag 1.0 and its cosign .sig manifest; counts and breaks on demand."""

    def __init__(self, key: PrivateKey) -> None:
        signature = sign_image("gw:5001/cs/app", sha(IMAGE), key)
        made = append_signature(None, None, signature)
        self.sig, self.blobs = made.manifest, made.blobs
        self.sig_reads = 0
        self.fail: int | None = None  # answer the .sig read with this status
        self.delay = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith(".sig"):
            self.sig_reads += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail is not None:
                return httpx.Response(self.fail, json={"errors": [{"code": "UNKNOWN", "message": "broken"}]})
            return httpx.Response(200, content=self.sig, headers={"Content-Type": OCI})
        if path.endswith(("/manifests/1.0", f"/manifests/{sha(IMAGE)}")):
            return httpx.Response(200, content=IMAGE, headers={"Content-Type": OCI})
        for digest, blob in self.blobs.items():
            if path.endswith(f"/blobs/{digest}"):
                return httpx.Response(200, content=blob)
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})


@pytest.fixture
def signer() -> PrivateKey:
    return PrivateKey.generate()


def gateway(upstream: Upstream, key_file: Path, *, ttl: float = 5.0, timeout: float = 10.0) -> TestClient:
    policy = TrustPolicy.from_data({"formats": {"cs/*": "cosign"}})
    requirements = Requirements(policy.formats, default_keys=load_cosign_keys([key_file]))
    settings = GatewaySettings(
        upstream="http://upstream:5000", gun_prefix="gw:5001", policy=policy, requirements=requirements
    )
    verifier = TrustVerifier(server=TrustServer("https://127.0.0.1:1"), ttl=ttl, timeout=timeout)
    return TestClient(create_app(settings, verifier=verifier, transport=httpx.MockTransport(upstream)))


def key_file(tmp_path: Path, key: PrivateKey) -> Path:
    signer = CosignSigner()
    signer.key = key
    return signer.pub(tmp_path / "cosign.pub")


def test_a_verified_digest_is_cached(tmp_path: Path, signer: PrivateKey) -> None:
    upstream = Upstream(signer)
    with gateway(upstream, key_file(tmp_path, signer)) as c:
        for _ in range(3):
            r = c.get("/v2/cs/app/manifests/1.0")
            assert r.status_code == 200 and r.content == IMAGE
        assert c.get(f"/v2/cs/app/manifests/{sha(IMAGE)}").status_code == 200
        assert upstream.sig_reads == 1  # one check for four requests


def test_failures_fail_closed_and_are_not_cached(tmp_path: Path, signer: PrivateKey) -> None:
    upstream = Upstream(signer)
    with gateway(upstream, key_file(tmp_path, signer)) as c:
        upstream.fail = 500
        r = c.get("/v2/cs/app/manifests/1.0")
        assert r.status_code == 502 and "answered 500" in r.text
        upstream.fail = 401
        r = c.get("/v2/cs/app/manifests/1.0")
        assert r.status_code == 403 and "refused to let the gateway read" in r.text
        upstream.fail = None  # healed: the next request checks again
        assert c.get("/v2/cs/app/manifests/1.0").status_code == 200
        assert upstream.sig_reads == 3


def test_a_check_past_its_deadline_refuses(tmp_path: Path, signer: PrivateKey) -> None:
    upstream = Upstream(signer)
    upstream.delay = 2.0
    with gateway(upstream, key_file(tmp_path, signer), timeout=0.3) as c:
        r = c.get("/v2/cs/app/manifests/1.0")
        assert r.status_code == 503 and "did not finish within 0.3 s" in r.text


def test_a_wrong_key_is_a_refusal(tmp_path: Path, signer: PrivateKey) -> None:
    upstream = Upstream(signer)
    with gateway(upstream, key_file(tmp_path, PrivateKey.generate())) as c:
        r = c.get("/v2/cs/app/manifests/1.0")
        assert r.status_code == 404
        assert "does not verify with the public key" in r.json()["errors"][0]["message"]
        assert r.json()["errors"][0]["detail"]["Required"] == "cosign"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verifier(upstream: Upstream, clock: Callable[[], float], ttl: float = 5.0) -> SignatureVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    reads = UpstreamReads(UpstreamProxy("http://upstream:5000", http), max_manifest_bytes=4 * 1024 * 1024)
    return SignatureVerifier(reads, notation=None, gun_prefix="gw:5001", ttl=ttl, clock=clock)


def test_ttl_shared_checks_and_fresh_requests(tmp_path: Path, signer: PrivateKey) -> None:
    upstream = Upstream(signer)
    keys = load_cosign_keys([key_file(tmp_path, signer)])
    subject = Descriptor(OCI, sha(IMAGE), len(IMAGE))
    clock = Clock()

    async def scenario() -> None:
        v = verifier(upstream, clock)
        upstream.delay = 0.05
        results = await asyncio.gather(
            *(v.check(Format.COSIGN, "cs/app", subject, keys=keys) for _ in range(10))
        )
        assert all(r.verified for r in results) and upstream.sig_reads == 1  # ten requests, one check
        upstream.delay = 0.0
        clock.now += 4.9
        await v.check(Format.COSIGN, "cs/app", subject, keys=keys)
        assert upstream.sig_reads == 1  # within the TTL
        clock.now += 0.2
        await v.check(Format.COSIGN, "cs/app", subject, keys=keys)
        assert upstream.sig_reads == 2  # expired: checked again
        clock.now += 0.01
        await v.check(Format.COSIGN, "cs/app", subject, keys=keys, fresh=True)
        assert upstream.sig_reads == 3  # a push decides on a check that began after it
        clock.now += 0.01
        v.forget("cs/app", subject.digest)  # signatures pushed through the gateway
        await v.check(Format.COSIGN, "cs/app", subject, keys=keys)
        assert upstream.sig_reads == 4
        none = await v.check(Format.COSIGN, "cs/app", subject, keys=())
        assert not none.verified and "no public key" in none.reason
        notation = await v.check(Format.NOTATION, "cs/app", subject)
        assert not notation.verified and "no trust policy" in notation.reason

    asyncio.run(scenario())


def test_any_is_not_blocked_by_a_format_that_cannot_be_checked(tmp_path: Path, signer: PrivateKey) -> None:
    """{any: [v1, cosign]} with the trust server down: the cosign signature is enough; without it the pull
    fails with the trust server's 503, not an "unsigned" 404."""
    upstream = Upstream(signer)
    policy = TrustPolicy.from_data({"formats": {"cs/*": {"any": ["v1", "cosign"]}}})
    requirements = Requirements(policy.formats, default_keys=load_cosign_keys([key_file(tmp_path, signer)]))
    settings = GatewaySettings(
        upstream="http://upstream:5000", gun_prefix="gw:5001", policy=policy, requirements=requirements
    )

    def app() -> TestClient:
        down = TrustVerifier(server=TrustServer("https://127.0.0.1:1"), timeout=2.0)  # nothing listens there
        return TestClient(create_app(settings, verifier=down, transport=httpx.MockTransport(upstream)))

    with app() as c:
        assert c.get("/v2/cs/app/manifests/1.0").status_code == 200
    upstream.fail = 404  # no cosign signature either
    with app() as c:
        r = c.get("/v2/cs/app/manifests/1.0")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "TRUST_UNAVAILABLE"
