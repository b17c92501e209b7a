"""The trust UI in process (Starlette TestClient, real SQLite via Alembic, fake registry): every status,
escaping, auth, JSON, headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from notar.crypto import PrivateKey
from notar.server.auth import TokenAuth
from notar.tuf import Envelope, Timestamp
from tests.server.test_auth import Issuer
from tests.web.conftest import GUN, REPO, Env, digest_of, make_env, meta

XSS = "<script>alert(1)</script>"


def page(env: Env, gun: str = GUN, **headers: str) -> str:
    r = env.client.get(f"/repositories/{gun}", headers=headers)
    assert r.status_code == 200, r.text
    text: str = r.text
    return text


def rows(html: str) -> dict[str, str]:
    """Tag -> the row's visible text, as a person reads it (tags unescaped, whitespace collapsed)."""
    out = {}
    for m in re.finditer(r'<tr class="row-[a-z]+" data-tag="([^"]*)"[^>]*>(.*?)</tr>', html, re.S):
        text = re.sub(r"<[^>]+>", " ", m.group(2))
        out[unescape(m.group(1))] = " ".join(unescape(text).split())
    return out


def api(env: Env, gun: str = GUN) -> dict[str, dict[str, Any]]:
    r = env.client.get(f"/api/repositories/{gun}")
    assert r.status_code == 200, r.text
    return {t["tag"]: t for t in r.json()["tags"]}


def add_alice(env: Env) -> tuple[str, PrivateKey]:
    signer = env.signer()
    alice = PrivateKey.generate()
    signer.keys.add(alice, role="alice")
    signer.add_signer("alice", [alice.public_key])
    return alice.key_id, alice


def test_every_status_with_registry(env: Env) -> None:
    alice_id, _ = add_alice(env)
    signer = env.signer()
    for tag, text in [("1.0", "one"), ("2.0", "two"), ("3.0", "three"), ("4.0", "four")]:
        env.push(tag, text)
    signer.sign({"1.0": meta("one"), "2.0": meta("two"), "4.0": meta("four"), "5.0": meta("five")})
    env.push("2.0", "two, rebuilt")  # the registry's tag moved after signing
    assert signer.revoke(["4.0"]) == ["4.0"]

    html = page(env)
    r = rows(html)
    assert set(r) == {"1.0", "2.0", "3.0", "4.0", "5.0"}
    assert r["1.0"].startswith("1.0 Signed ") and "alice" in r["1.0"] and alice_id[:12] in r["1.0"]
    assert digest_of("one") in r["1.0"]
    assert "Signed but stale" in r["2.0"]
    assert digest_of("two") in r["2.0"] and digest_of("two, rebuilt") in r["2.0"]
    assert r["3.0"].startswith("3.0 Unsigned") and "nobody" in r["3.0"]
    assert r["4.0"].startswith("4.0 Revoked") and "no longer signed" in r["4.0"]
    assert r["5.0"].startswith("5.0 Signed") and "not in the registry" in r["5.0"]

    data = api(env)
    assert {t: d["status"] for t, d in data.items()} == {
        "1.0": "signed",
        "2.0": "stale",
        "3.0": "unsigned",
        "4.0": "revoked",
        "5.0": "signed",
    }
    assert data["1.0"]["digest"] == digest_of("one")
    assert data["1.0"]["signers"] == [{"name": "alice", "role": "targets/alice", "key_ids": [alice_id]}]
    assert data["2.0"]["registry_digest"] == digest_of("two, rebuilt")
    full = env.client.get(f"/api/repositories/{GUN}").json()
    assert full["state"] == "ok" and full["signers"][0]["name"] == "alice"
    assert (
        len(full["administrative_keys"]["root"]) == 1 and len(full["administrative_keys"]["repository"]) == 1
    )
    assert full["changes"] and full["changes"][0]["category"] == "update"
    assert full["registry"]["repository"] == REPO
    # keys section: root and repository key IDs, the signer and its key
    assert full["administrative_keys"]["root"][0] in html and alice_id in html


def test_signed_by_repository_key_without_signers(env: Env) -> None:
    env.push("1.0", "one")
    env.signer().sign({"1.0": meta("one")})
    data = api(env)
    assert data["1.0"]["status"] == "signed" and data["1.0"]["role"] == "targets"
    assert [s["name"] for s in data["1.0"]["signers"]] == ["Repo Admin"]
    assert "Repo Admin" in rows(page(env))["1.0"]


def test_tag_names_are_escaped(env: Env) -> None:
    env.signer().sign({XSS: meta("x"), 'q"uote': meta("y")})
    html = page(env)
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-tag="q&#34;uote"' in html or 'data-tag="q&quot;uote"' in html
    assert rows(html)[XSS].startswith(XSS + " Signed")
    listing = env.client.get("/")
    assert "<script>alert" not in listing.text
    assert api(env)[XSS]["status"] == "signed"


def test_expired_trust_data(env: Env) -> None:
    env.push("1.0", "one")
    env.signer().sign({"1.0": meta("one")})
    env.clock.offset_days = 4 * 365  # targets expire after 3 years; the server re-signs timestamp/snapshot
    r = rows(page(env))
    assert r["1.0"].startswith("1.0 Expired trust data")
    assert "Trust data has expired" in page(env)
    body = env.client.get(f"/api/repositories/{GUN}").json()
    assert body["state"] == "expired" and "expired" in body["problem"]
    listing = env.client.get("/api/repositories").json()["repositories"]
    assert listing == [
        {
            "gun": GUN,
            "state": "expired",
            "signed_tags": 0,
            "updated_at": listing[0]["updated_at"],
            "problem": listing[0]["problem"],
        }
    ]


def test_invalid_trust_data(env: Env) -> None:
    env.push("1.0", "one")
    env.signer().sign({"1.0": meta("one")})
    ts = env.store.get_current(GUN, "timestamp")
    assert ts is not None
    doc = json.loads(ts.data)
    doc["signed"]["version"] += 1  # the signature no longer matches
    from notar.server.storage import MetaUpdate

    env.store.update_many(GUN, [MetaUpdate("timestamp", doc["signed"]["version"], json.dumps(doc).encode())])
    Envelope.from_bytes(json.dumps(doc).encode(), expect=Timestamp)  # parses; only verification fails
    html = page(env)
    assert "Trust data is invalid" in html
    assert rows(html)["1.0"].startswith("1.0 Invalid trust data")
    assert api(env)["1.0"]["status"] == "invalid"
    assert env.client.get("/api/repositories").json()["repositories"][0]["state"] == "invalid"


def test_listing_search_and_counts(env: Env) -> None:
    env.signer().sign({"1.0": meta("one"), "2.0": meta("two")})
    other = f"{GUN}-other"
    env.signer(other, "trust2").sign({"a": meta("a")})
    html = env.client.get("/").text
    assert GUN in html and other in html
    repos = {r["gun"]: r for r in env.client.get("/api/repositories").json()["repositories"]}
    assert repos[GUN]["signed_tags"] == 2 and repos[other]["signed_tags"] == 1
    assert repos[GUN]["state"] == "ok"
    found = env.client.get("/api/repositories", params={"q": "OTHER"}).json()["repositories"]
    assert [r["gun"] for r in found] == [other]
    assert "No repositories" in env.client.get("/", params={"q": "nothing-like-this"}).text
    assert env.client.get("/", params={"q": XSS}).text.count("<script>alert") == 0


def test_not_found_headers_and_api_untouched(env: Env) -> None:
    env.signer().sign({"1.0": meta("one")})
    assert env.client.get("/repositories/registry.test/none/such").status_code == 404
    assert env.client.get("/api/repositories/registry.test/none/such").status_code == 404
    assert env.client.get("/repositories/../etc/passwd").status_code == 404
    assert env.client.get("/nope").status_code == 404
    r = env.client.get(f"/repositories/{GUN}")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert env.client.get("/static/style.css").status_code == 200
    assert env.client.get("/v2/").json() == {}  # the API is still the API
    assert env.client.get(f"/v2/{GUN}/_trust/tuf/root.json").status_code == 200


def test_no_secrets_in_pages(env: Env) -> None:
    add_alice(env)
    env.signer().sign({"1.0": meta("one")})
    for path in ("/", f"/repositories/{GUN}", "/api/repositories", f"/api/repositories/{GUN}"):
        text = env.client.get(path).text
        for secret in ("PRIVATE KEY", "test-passphrase", "BEGIN", '"private"'):
            assert secret not in text, (path, secret)


def test_registry_unreachable_is_said(tmp_path: Path) -> None:
    for env in make_env(tmp_path):
        env.signer().sign({"1.0": meta("one")})
        from starlette.responses import Response

        env.fake.override("GET", f"/v2/{REPO}/tags/list", lambda _req: Response(b"boom", 500))
        html = page(env)
        assert "The registry could not be read" in html
        assert rows(html)["1.0"].startswith("1.0 Signed")


def test_without_registry(tmp_path: Path) -> None:
    for env in make_env(tmp_path, registry=False):
        env.push("3.0", "three")
        env.signer().sign({"1.0": meta("one")})
        html = page(env)
        assert "No registry configured" in html
        assert set(rows(html)) == {"1.0"}


@pytest.fixture
def auth_env(tmp_path: Path) -> Iterator[tuple[Env, Issuer]]:
    issuer = Issuer(tmp_path)
    auth = TokenAuth(
        realm="https://auth.test/token", service="notar-test", issuer="test-issuer", root_bundle=issuer.bundle
    )
    for env in make_env(tmp_path, auth=auth):
        yield env, issuer


def test_token_auth(auth_env: tuple[Env, Issuer]) -> None:
    env, issuer = auth_env
    other = f"{GUN}-other"
    push_all = [{"type": "repository", "name": g, "actions": ["push", "pull"]} for g in (GUN, other)]
    env.client.headers["Authorization"] = "Bearer " + issuer.token(push_all)
    env.signer().sign({"1.0": meta("one")})
    env.signer(other, "trust2").sign({"a": meta("a")})
    del env.client.headers["Authorization"]

    only_gun = "Bearer " + issuer.token([{"type": "repository", "name": GUN, "actions": ["pull"]}])
    # without a token: nothing listed, pages answer 401 with the registry-style challenge
    assert env.client.get("/api/repositories").json()["repositories"] == []
    for path in (f"/repositories/{GUN}", f"/api/repositories/{GUN}", "/repositories/registry.test/none"):
        r = env.client.get(path)
        assert r.status_code == 401 and 'scope="repository:' in r.headers["www-authenticate"], path
    # with pull on GUN only
    listed = env.client.get("/api/repositories", headers={"Authorization": only_gun}).json()["repositories"]
    assert [r["gun"] for r in listed] == [GUN]
    assert rows(page(env, Authorization=only_gun))["1.0"].startswith("1.0 Signed")
    assert env.client.get(f"/repositories/{other}", headers={"Authorization": only_gun}).status_code == 401
    html = env.client.get("/", headers={"Authorization": only_gun}).text
    assert GUN in html and other not in html
    forged = "Bearer " + issuer.token(
        [{"type": "repository", "name": other, "actions": ["pull"]}],
        key=ec.generate_private_key(ec.SECP256R1()),
    )
    assert env.client.get(f"/repositories/{other}", headers={"Authorization": forged}).status_code == 401
