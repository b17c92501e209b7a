"""The gateway against a registry that lies or misbehaves (in process: httpx.MockTransport, a fixed view).

Found by red-teaming: a non-200 answer for a signed manifest must never reach the client as if it were the
manifest; a delete must not pass when the gateway cannot search a signed index; nested indexes; what a
proxy in front says about the client must not reach the registry; the client's Accept header counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
from starlette.testclient import TestClient

from notar.gateway import GatewaySettings, SignedTag, TrustPolicy, create_app
from tests.gateway.test_inprocess import FixedVerifier

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "c" * 64, "size": 2}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


IMAGE = dump({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": CONFIG, "layers": []})
INNER = dump(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(IMAGE), "size": len(IMAGE)}],
    }
)
OUTER = dump(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": sha(INNER), "size": len(INNER)}],
    }
)
BARE = dump({"schemaVersion": 2, "config": CONFIG, "layers": []})  # an OCI manifest without mediaType


class Registry:
    """Manifests by digest, with per-path overrides; records what reached it."""

    def __init__(self, *manifests: bytes) -> None:
        self.manifests = {sha(m): m for m in manifests}
        self.overrides: dict[str, Callable[[httpx.Request], httpx.Response]] = {}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        for suffix, answer in self.overrides.items():
            if path.endswith(suffix):
                return answer(request)
        if request.method == "DELETE":
            return httpx.Response(202)
        if path.endswith("/blobs/uploads/"):
            return httpx.Response(202, headers={"Location": "http://upstream:5000/v2/a/b/blobs/uploads/u1"})
        ref = path.rsplit("/", 1)[-1]
        if ref in self.manifests:
            data = self.manifests[ref]
            kind = json.loads(data).get("mediaType") or "text/plain"  # a registry that says nothing useful
            return httpx.Response(200, content=data, headers={"Content-Type": kind})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})


def gateway(registry: Registry, tags: dict[str, bytes], *, children: bool = True) -> TestClient:
    settings = GatewaySettings(
        upstream="http://upstream:5000",
        gun_prefix="gw:5001",
        policy=TrustPolicy(allow_index_children=children),
    )
    view = {tag: SignedTag(sha(data), len(data), "targets/releases") for tag, data in tags.items()}
    app = create_app(settings, verifier=FixedVerifier(view), transport=httpx.MockTransport(registry))
    return TestClient(app)


def test_only_a_verified_200_is_served_for_a_signed_tag() -> None:
    evil = dump({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "evil": True})
    reg = Registry(IMAGE)
    with gateway(reg, {"1.0": IMAGE}) as c:
        for status, headers in (
            (203, {}),
            (206, {}),
            (307, {"Location": "http://upstream:5000/v2/a/b/blobs/" + sha(evil)}),
            (500, {}),
        ):
            reg.overrides[f"/manifests/{sha(IMAGE)}"] = lambda r, s=status, h=headers: httpx.Response(
                s, content=evil, headers={"Content-Type": OCI_MANIFEST, **h}
            )
            r = c.get("/v2/a/b/manifests/1.0", follow_redirects=False)
            assert r.status_code == 502, (status, r.status_code, r.text)
            assert b"evil" not in r.content and "location" not in r.headers
        # an auth challenge is the registry's to answer (the client retries with a token)
        challenge = {"WWW-Authenticate": 'Bearer realm="http://auth/token",service="registry"'}
        reg.overrides[f"/manifests/{sha(IMAGE)}"] = lambda r: httpx.Response(
            401, json={"errors": [{"code": "UNAUTHORIZED"}]}, headers=challenge
        )
        r = c.get("/v2/a/b/manifests/1.0")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer ")


def test_delete_is_refused_when_a_signed_index_cannot_be_searched() -> None:
    reg = Registry(OUTER, INNER, IMAGE)
    reg.overrides[f"/manifests/{sha(OUTER)}"] = lambda r: (
        httpx.Response(202) if r.method == "DELETE" else httpx.Response(401, json={"errors": []})
    )
    with gateway(reg, {"multi": OUTER}) as c:
        r = c.delete(f"/v2/a/b/manifests/{sha(IMAGE)}")
        assert r.status_code == 403 and "cannot tell" in r.json()["errors"][0]["message"]
    assert not [q for q in reg.seen if q.method == "DELETE"]


def test_nested_index_children_are_served_and_protected() -> None:
    reg = Registry(OUTER, INNER, IMAGE)
    with gateway(reg, {"multi": OUTER}) as c:
        for data in (INNER, IMAGE):
            r = c.get(f"/v2/a/b/manifests/{sha(data)}")
            assert r.status_code == 200 and r.content == data
            assert c.delete(f"/v2/a/b/manifests/{sha(data)}").status_code == 403
    with gateway(reg, {"multi": OUTER}, children=False) as c:
        assert c.get(f"/v2/a/b/manifests/{sha(IMAGE)}").status_code == 404


def test_proxy_headers_do_not_reach_the_registry() -> None:
    reg = Registry(IMAGE)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil:1", "Forwarded": "proto=https"}
    with gateway(reg, {"1.0": IMAGE}) as c:
        r = c.post("/v2/a/b/blobs/uploads/", headers=forwarded)
        assert r.headers["location"] == "http://testserver/v2/a/b/blobs/uploads/u1"
    sent = {k.lower() for q in reg.seen for k in q.headers}
    assert not sent & {"x-forwarded-proto", "x-forwarded-host", "forwarded"}


def test_accept_header_and_media_type_of_the_verified_bytes() -> None:
    reg = Registry(OUTER, INNER, IMAGE, BARE)
    with gateway(reg, {"multi": OUTER, "bare": BARE}) as c:
        r = c.get("/v2/a/b/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        for accept in (None, "*/*", f"{DOCKER_MANIFEST}, {OCI_INDEX}", "application/*"):
            r = c.get("/v2/a/b/manifests/multi", headers={"Accept": accept} if accept else {})
            assert r.status_code == 200 and r.headers["content-type"] == OCI_INDEX, accept
        # the registry says text/plain: the type comes from the verified bytes (their shape when unnamed)
        r = c.get("/v2/a/b/manifests/bare")
        assert r.status_code == 200 and r.headers["content-type"] == OCI_MANIFEST


def test_oversized_put_and_unsupported_methods() -> None:
    with gateway(Registry(IMAGE), {"1.0": IMAGE}) as c:
        r = c.put(
            "/v2/a/b/manifests/1.0",
            content=b"x" * (4 * 1024 * 1024 + 1),
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 413
        r = c.patch("/v2/a/b/manifests/1.0")
        assert r.status_code == 405 and "GET" in r.headers["allow"]


def test_manifest_writes_do_not_carry_query_strings_upstream() -> None:
    reg = Registry(IMAGE)
    with gateway(reg, {"1.0": IMAGE}) as c:
        c.put(
            f"/v2/a/b/manifests/{sha(IMAGE)}?tag=latest",
            content=IMAGE,
            headers={"Content-Type": OCI_MANIFEST},
        )
        c.put("/v2/a/b/manifests/1.0?tag=other", content=IMAGE, headers={"Content-Type": OCI_MANIFEST})
    puts = [q for q in reg.seen if q.method == "PUT"]
    assert len(puts) == 2 and all(not q.url.query for q in puts)
