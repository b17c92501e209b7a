"""Who the trust UI (page and API) shows as a tag's signer: the key that really signed the role the tag is
read from (targets/releases, a named signer, the repository key), never a delegation that only lists it."""

from __future__ import annotations

from typing import Any

from notar.crypto import PrivateKey, PublicKey
from notar.tuf import DelegatedRole, Envelope, FileMeta, new_targets
from tests.registry.fakes import REGISTRY_HOST
from tests.server.tuf_builders import Repo, multipart
from tests.web.conftest import Env, meta
from tests.web.test_pages import add_alice, api, page, rows


def _key(env: Env, gun: str, role: str) -> PublicKey:
    r = env.client.get(f"/v2/{gun}/_trust/tuf/{role}.key")
    assert r.status_code == 200, r.text
    return PublicKey.from_dict(r.json())


def _post(env: Env, gun: str, files: dict[str, bytes]) -> None:
    body, ctype = multipart(files)
    r = env.client.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"content-type": ctype})
    assert r.status_code == 200, r.text


def _publish(
    env: Env, gun: str, releases_keys: list[PrivateKey], others: dict[str, PrivateKey], tags: dict[str, str]
) -> Repo:
    """targets signs "base"; targets/releases (signed by *releases_keys*) and each delegation in *others*
    list *tags* (role -> tag -> manifest text: each role lists its tags)."""
    repo = Repo(gun, timestamp_key=_key(env, gun, "timestamp"), snapshot_key=_key(env, gun, "snapshot"))
    assert repo.targets is not None
    for k in releases_keys:
        repo.targets.delegations.keys[k.key_id] = k.public_key
    repo.targets.delegations.roles.append(
        DelegatedRole("targets/releases", [k.key_id for k in releases_keys], 1, [""])
    )
    for name, k in others.items():
        repo.delegate(f"targets/{name}", k)
    files = repo.first_publish("base")
    releases = new_targets(now=repo.now)
    for tag, text in tags.items():
        releases.targets[tag] = meta(text)
    releases.targets["releases-only"] = meta("r")  # no delegation lists this one
    files["targets/releases"] = Envelope.sign(releases, releases_keys).data
    for name, k in others.items():
        body = new_targets(now=repo.now)
        for tag, text in tags.items():
            body.targets[tag] = meta(text)  # the same tag and digest as in releases
        body.targets[f"{name}-only"] = meta("x")
        files[f"targets/{name}"] = Envelope.sign(body, [k]).data
    _post(env, gun, files)
    return repo


def _api(env: Env, gun: str) -> dict[str, Any]:
    r = env.client.get(f"/api/repositories/{gun}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_releases_tag_is_not_attributed_to_a_signer_whose_key_did_not_sign_it(env: Env) -> None:
    gun = f"{REGISTRY_HOST}/rt/a9"
    releases_key, alice_key = PrivateKey.generate(), PrivateKey.generate()
    repo = _publish(env, gun, [releases_key], {"alice": alice_key}, {"r1": "one"})
    data = _api(env, gun)
    tags = {t["tag"]: t for t in data["tags"]}

    r1 = tags["r1"]
    assert r1["status"] == "signed" and r1["role"] == "targets/releases"
    # the key that signed targets/releases, under the releases role: not alice, not the repository key
    assert r1["signers"] == [
        {
            "name": "releases",
            "role": "targets/releases",
            "key_ids": [releases_key.public_key.canonical_key_id],
        }
    ]
    assert alice_key.key_id not in str(r1["signers"]) and repo.targets_key.key_id not in str(r1["signers"])
    assert "alice" in r1["note"] and "did not sign targets/releases" in r1["note"]

    # a tag only in releases: its key, not "Repo Admin" with the repository (targets) key
    only = tags["releases-only"]
    assert only["role"] == "targets/releases" and only["note"] == "not in the registry"
    assert only["signers"] == r1["signers"]

    base = tags["base"]
    assert base["role"] == "targets"
    assert base["signers"] == [
        {"name": "Repo Admin", "role": "targets", "key_ids": [repo.targets_key.key_id]}
    ]
    assert data["administrative_keys"]["repository"] == [repo.targets_key.key_id]
    assert tags["alice-only"]["status"] == "unsigned" and tags["alice-only"]["signers"] == []

    # the page says the same
    row = rows(page(env, gun))["r1"]
    assert "releases" in row and releases_key.key_id[:12] in row
    assert "signed in targets/releases" in row
    assert alice_key.key_id[:12] not in row and repo.targets_key.key_id[:12] not in row
    assert "Repo Admin" not in row
    # the repository's list of signers still names alice with her key (that is true)
    assert [(s["name"], s["key_ids"]) for s in data["signers"]] == [("alice", [alice_key.key_id])]


def test_releases_signed_by_a_named_signer_key_shows_that_signer(env: Env) -> None:
    gun = f"{REGISTRY_HOST}/rt/named"
    alice_key, bob_key, other = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    # releases may be signed by alice's or bob's key (docker's signer add); only alice's key signs it
    repo = Repo(gun, timestamp_key=_key(env, gun, "timestamp"), snapshot_key=_key(env, gun, "snapshot"))
    assert repo.targets is not None
    for k in (alice_key, bob_key):
        repo.targets.delegations.keys[k.key_id] = k.public_key
    repo.targets.delegations.roles.append(
        DelegatedRole("targets/releases", [alice_key.key_id, bob_key.key_id], 1, [""])
    )
    repo.delegate("targets/alice", alice_key)
    repo.delegate("targets/bob", bob_key)
    repo.delegate("targets/carol", other)
    files = repo.first_publish()
    releases = new_targets(now=repo.now)
    releases.targets["v1"] = meta("one")
    files["targets/releases"] = Envelope.sign(releases, [alice_key]).data
    for name, k in (("alice", alice_key), ("bob", bob_key), ("carol", other)):
        body = new_targets(now=repo.now)
        body.targets["v1"] = meta("one")
        files[f"targets/{name}"] = Envelope.sign(body, [k]).data
    _post(env, gun, files)

    v1 = {t["tag"]: t for t in _api(env, gun)["tags"]}["v1"]
    assert v1["role"] == "targets/releases"
    assert v1["signers"] == [{"name": "alice", "role": "targets/alice", "key_ids": [alice_key.key_id]}]
    assert "bob" in v1["note"] and "carol" in v1["note"]  # listed the digest, but did not sign the release
    row = rows(page(env, gun))["v1"]
    assert "alice" in row and alice_key.key_id[:12] in row and bob_key.key_id[:12] not in row


def test_docker_signer_flow_still_shows_the_signer(env: Env) -> None:
    alice_id, _ = add_alice(env)
    env.signer().sign({"1.0": meta("one")})
    one = api(env)["1.0"]
    assert one["role"] == "targets/releases"
    assert one["signers"] == [{"name": "alice", "role": "targets/alice", "key_ids": [alice_id]}]
    assert one["note"] == "not in the registry"


def test_tag_only_in_targets_is_signed_by_the_repository_key_even_if_a_delegation_lists_it(env: Env) -> None:
    gun = f"{REGISTRY_HOST}/rt/admin"
    alice_key = PrivateKey.generate()
    repo = Repo(gun, timestamp_key=_key(env, gun, "timestamp"), snapshot_key=_key(env, gun, "snapshot"))
    repo.delegate("targets/alice", alice_key)
    files = repo.first_publish("base")
    body = new_targets(now=repo.now)
    body.targets["base"] = FileMeta(401, repo.targets.targets["base"].hashes) if repo.targets else meta("x")
    files["targets/alice"] = Envelope.sign(body, [alice_key]).data
    _post(env, gun, files)
    base = {t["tag"]: t for t in _api(env, gun)["tags"]}["base"]
    assert base["role"] == "targets"
    assert base["signers"] == [
        {"name": "Repo Admin", "role": "targets", "key_ids": [repo.targets_key.key_id]}
    ]
    assert "alice" in base["note"]
