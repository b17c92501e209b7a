"""Each tag's Notation and cosign signatures in the UI, in process (real SQLite, the fake registry, signatures
made with notar's libraries): signer, signing time, verified or not under the server's trust policy and keys,
and never "verified" without them. The JSON API carries the same."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from notar.registry import RegistryClient
from notar.server.app import ServerSettings, create_app
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from notar.signing.verification import CosignKey, NotationTrust, load_cosign_keys, load_notation_trust
from notar.web import create_web_app
from tests.gateway.signing import CosignSigner, NotationSigner
from tests.registry.fakes import REGISTRY_HOST, FakeRegistry
from tests.registry.images import Image, make_image
from tests.web.conftest import GUN, REPO, Clock, Env, meta

OCI = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Signed:
    env: Env
    notation: NotationSigner
    cosign: CosignSigner
    registry: RegistryClient
    image: Image


def make(
    tmp_path: Path, *, notation: NotationTrust | None = None, cosign_keys: tuple[CosignKey, ...] = ()
) -> Iterator[tuple[Env, RegistryClient]]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    clock = Clock()
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")), clock=clock)
    fake = FakeRegistry()
    with fake.client() as registry_client:
        web = create_web_app(service, registry=registry_client, notation=notation, cosign_keys=cosign_keys)
        app = create_app(ServerSettings(), service=service, web=web)
        with TestClient(app) as client:
            yield Env(client, service, store, fake, clock, tmp_path), registry_client
    store.close()


def setup(env: Env, registry: RegistryClient, notation: NotationSigner, cosign: CosignSigner) -> Image:
    """1.0: v1-signed, Notation-signed (trusted signer and a stranger), cosign-signed; 2.0: only in the
    registry, no signature at all."""
    image = make_image("signed three ways\n")
    for blob in image.blobs:
        registry.push_blob(REPO, blob.digest, blob.data, blob.size)
    registry.put_manifest(REPO, "1.0", image.manifest.data, OCI)
    env.push("2.0", "never signed")
    env.signer().sign({"1.0": meta(image.manifest.data.decode())})
    notation.sign(registry, REPO, image.manifest.data)
    NotationSigner("stranger").sign(registry, REPO, image.manifest.data)
    cosign.sign(registry, REPO, f"{REGISTRY_HOST}/{REPO}", image.manifest.digest)
    return image


def rows(html: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r'<tr class="row-[a-z]+" data-tag="([^"]*)"[^>]*>(.*?)</tr>', html, re.S):
        out[unescape(m.group(1))] = " ".join(unescape(re.sub(r"<[^>]+>", " ", m.group(2))).split())
    return out


def api(env: Env) -> dict[str, Any]:
    r = env.client.get(f"/api/repositories/{GUN}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def signers() -> tuple[NotationSigner, CosignSigner]:
    return NotationSigner("web-ui"), CosignSigner()


def test_verified_under_the_servers_policy_and_keys(
    tmp_path: Path, signers: tuple[NotationSigner, CosignSigner]
) -> None:
    notation, cosign = signers
    trust = load_notation_trust(config_dir=notation.config_dir(tmp_path / "notation"))
    keys = load_cosign_keys([cosign.pub(tmp_path / "cosign.pub")])
    for env, registry in make(tmp_path, notation=trust, cosign_keys=keys):
        image = setup(env, registry, notation, cosign)
        page = env.client.get(f"/repositories/{GUN}").text
        r = rows(page)
        assert set(r) == {"1.0", "2.0"}  # the signature tags (sha256-..., .sig) are not tags
        one = r["1.0"]
        assert "notation Verified CN=web-ui,O=notar-tests,ST=WA,C=US signed 20" in one
        assert "notation Not verified CN=stranger,O=notar-tests,ST=WA,C=US" in one
        assert "authenticity failed" in one
        assert f"cosign Verified key-based verified with {tmp_path / 'cosign.pub'}" in one
        assert r["2.0"].endswith("no signatures")
        assert 'id="signature-policy"' in page and "trustpolicy.json" in page

        data = api(env)
        assert data["signature_policy"] == {
            "notation": str(tmp_path / "notation" / "trustpolicy.json"),
            "cosign_keys": [str(tmp_path / "cosign.pub")],
        }
        tag = next(t for t in data["tags"] if t["tag"] == "1.0")
        signatures = tag["signatures"]
        assert signatures["digest"] == image.manifest.digest and signatures["errors"] == []
        notation_rows = [s for s in signatures["items"] if s["format"] == "notation"]
        assert {(s["signer"], s["verified"]) for s in notation_rows} == {
            ("CN=web-ui,O=notar-tests,ST=WA,C=US", True),
            ("CN=stranger,O=notar-tests,ST=WA,C=US", False),
        }
        assert all(s["signed_at"] for s in notation_rows)
        [cosign_row] = [s for s in signatures["items"] if s["format"] == "cosign"]
        assert cosign_row["verified"] is True and cosign_row["signer"] == "key-based"


def test_without_a_policy_nothing_is_called_verified(
    tmp_path: Path, signers: tuple[NotationSigner, CosignSigner]
) -> None:
    notation, cosign = signers
    for env, registry in make(tmp_path):
        setup(env, registry, notation, cosign)
        page = env.client.get(f"/repositories/{GUN}").text
        one = rows(page)["1.0"]
        assert "Verified" not in one and "valid" not in one.lower().replace("not verified", "")
        assert one.count("not verified: no trust policy configured") == 2
        assert "not verified: no cosign key configured" in one
        assert "CN=web-ui,O=notar-tests,ST=WA,C=US" in one  # who signed is still shown
        policy_line = " ".join(unescape(re.sub(r"<[^>]+>", "", page)).split())
        assert (
            "Notation signatures: shown, not verified: no trust policy configured (--notation-config DIR)"
            in (policy_line)
        )
        items = next(t for t in api(env)["tags"] if t["tag"] == "1.0")["signatures"]["items"]
        assert {s["verified"] for s in items} == {None}


def test_a_policy_that_does_not_cover_the_repository(
    tmp_path: Path, signers: tuple[NotationSigner, CosignSigner]
) -> None:
    notation, cosign = signers
    trust = load_notation_trust(config_dir=notation.config_dir(tmp_path / "n", scopes=("other.example/app",)))
    for env, registry in make(tmp_path, notation=trust):
        setup(env, registry, notation, cosign)
        one = rows(env.client.get(f"/repositories/{GUN}").text)["1.0"]
        assert (
            f"not verified: no trust policy statement covers {GUN}" in one and "notation Verified" not in one
        )


def test_unreadable_signatures_are_said_so(
    tmp_path: Path, signers: tuple[NotationSigner, CosignSigner]
) -> None:
    notation, cosign = signers
    for env, registry in make(tmp_path):
        image = setup(env, registry, notation, cosign)
        from starlette.responses import JSONResponse

        tag = f"sha256-{image.manifest.digest[7:]}"
        env.fake.override(
            "GET",
            f"/v2/{REPO}/manifests/{tag}",
            lambda _r: JSONResponse({"errors": [{"code": "UNKNOWN", "message": "boom"}]}, 500),
        )
        one = rows(env.client.get(f"/repositories/{GUN}").text)["1.0"]
        assert "could not be read: Notation signatures:" in one
        assert "cosign" in one  # the other format is still shown
