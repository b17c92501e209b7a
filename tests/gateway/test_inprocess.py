"""The policy file and the ASGI app in process: a mock upstream (httpx.MockTransport), a fixed trust view."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from notar.client import TrustServer
from notar.gateway import (
    ConfigError,
    GatewaySettings,
    SignedTag,
    TrustPolicy,
    TrustVerifier,
    TrustView,
    create_app,
)

SIGNED = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
EVIL = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","evil":true}'


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_policy_defaults_to_every_repository() -> None:
    assert TrustPolicy().enabled("any/repo")
    p = TrustPolicy.from_data(
        {"repositories": ["prod/*"], "exclude": ["prod/tmp-*"], "allow_index_children": False}
    )
    assert p.enabled("prod/app") and p.enabled("prod/a/b")
    assert not p.enabled("prod/tmp-1") and not p.enabled("dev/app")
    assert TrustPolicy.from_data(["a", "b/*"]).repositories == ("a", "b/*")


def test_policy_files(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("exclude: [open/*]\n")
    assert not TrustPolicy.from_file(tmp_path / "p.yaml").enabled("open/x")
    (tmp_path / "p.json").write_text(json.dumps({"repositories": ["x"]}))
    assert TrustPolicy.from_file(tmp_path / "p.json").repositories == ("x",)
    for text, message in (
        ("repositories: x", "must be a list"),
        ("allow_index_children: maybe", "true or false"),
        ("surprise: 1", "unknown keys"),
        ("[: bad", "not valid YAML"),
        ("42", "expected a list"),
    ):
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            TrustPolicy.from_file(tmp_path / "bad.yaml")


class FixedVerifier(TrustVerifier):
    def __init__(self, tags: dict[str, SignedTag], *, fail: str | None = None) -> None:
        super().__init__(server=TrustServer("https://127.0.0.1:1"), ttl=5.0)
        self.tags, self.fail = tags, fail

    def verify(self, gun: str) -> TrustView:
        from notar.gateway import GatewayError

        self.refreshes += 1
        if self.fail:
            raise GatewayError("TRUST_UNAVAILABLE", self.fail)
        return TrustView(gun, exists=True, tags=self.tags, verified_at=self.clock())


def upstream(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    blobs = {sha(SIGNED): SIGNED, sha(EVIL): EVIL}
    if path.endswith("/manifests/1.0"):  # the tag was moved in the registry
        if request.method == "PUT":
            return httpx.Response(201, headers={"Location": f"http://upstream:5000{path}"})
        return httpx.Response(
            200, content=EVIL, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )
    for digest, data in blobs.items():
        if path.endswith(f"/manifests/{digest}"):
            return httpx.Response(
                200, content=data, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            )
    if path.endswith("/blobs/uploads/"):
        return httpx.Response(
            202, headers={"Location": "http://upstream:5000/v2/a/b/blobs/uploads/u1?_state=x"}
        )
    return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "unknown"}]})


def client(verifier: TrustVerifier) -> TestClient:
    settings = GatewaySettings(upstream="http://upstream:5000", gun_prefix="gw:5001")
    return TestClient(create_app(settings, verifier=verifier, transport=httpx.MockTransport(upstream)))


def test_tag_is_answered_with_the_signed_manifest_and_cached() -> None:
    verifier = FixedVerifier({"1.0": SignedTag(sha(SIGNED), len(SIGNED), "targets")})
    with client(verifier) as c:
        for _ in range(3):
            r = c.get("/v2/a/b/manifests/1.0")
            assert r.status_code == 200 and r.content == SIGNED
            assert r.headers["docker-content-digest"] == sha(SIGNED)
        assert verifier.refreshes == 1  # one verification for three requests
        assert c.get(f"/v2/a/b/manifests/{sha(EVIL)}").status_code == 404
        put = c.put("/v2/a/b/manifests/1.0", content=EVIL)
        assert put.status_code == 403 and put.json()["errors"][0]["code"] == "DENIED"
        ok = c.put("/v2/a/b/manifests/1.0", content=SIGNED)
        assert ok.status_code == 201 and ok.headers["location"].startswith("http://testserver/")
        upload = c.post("/v2/a/b/blobs/uploads/")
        assert upload.headers["location"] == "http://testserver/v2/a/b/blobs/uploads/u1?_state=x"


def test_wrong_size_or_bytes_upstream_is_refused() -> None:
    verifier = FixedVerifier({"1.0": SignedTag(sha(SIGNED), len(SIGNED) + 1, "targets")})
    with client(verifier) as c:
        r = c.get("/v2/a/b/manifests/1.0")
        assert r.status_code == 403 and "signed size" in r.text


def test_trust_failure_fails_closed_and_is_not_cached() -> None:
    verifier = FixedVerifier({}, fail="trust server down")
    with client(verifier) as c:
        for _ in range(2):
            r = c.get("/v2/a/b/manifests/1.0")
            assert r.status_code == 503 and r.json()["errors"][0]["message"] == "trust server down"
        assert verifier.refreshes == 2
