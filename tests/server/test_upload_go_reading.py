"""The server refuses uploads that Go clients would read differently, or never use (red-team #11).

In process (Starlette TestClient, real SQLite). The same documents against the real Go notary-server and
notary CLI are in tests/server/test_split_view_peers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notar.crypto import PrivateKey
from notar.encoding import GoTime, b64encode, canonical_json
from notar.server.app import ServerSettings, create_app
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from notar.tuf import DelegatedRole, Envelope, FileMeta, Targets, new_targets
from tests.server.test_api import TUF, docker_repo, post
from tests.server.tuf_builders import DIGEST, Repo

OTHER = bytes(range(32))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")))
    with TestClient(create_app(ServerSettings(), service=service)) as c:
        yield c
    store.close()


def signed_raw(signed: dict[str, object], key: PrivateKey, **top: object) -> bytes:
    method, sig = key.sign(canonical_json(signed))
    doc: dict[str, object] = {
        "signed": signed,
        "signatures": [{"keyid": key.key_id, "method": method, "sig": b64encode(sig)}],
        **top,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def detail(payload: dict[str, object] | None) -> dict[str, str]:
    assert payload is not None
    error = payload["errors"][0]  # type: ignore[index]
    assert error["code"] == "INVALID_UPDATE", payload
    return {"Name": error["detail"]["Name"], "Message": error["detail"]["Error"]["Msg"]}  # type: ignore[index]


def current_targets(client: TestClient) -> Targets:
    return Envelope.from_bytes(client.get(TUF + "targets.json").content, expect=Targets).signed


@pytest.fixture
def published(client: TestClient) -> Repo:
    repo = docker_repo(client)
    assert post(client, repo.first_publish("shown"))[0] == 200
    return repo


def test_the_reported_split_view_is_refused_and_nothing_changes(client: TestClient, published: Repo) -> None:
    assert published.targets is not None
    before = client.get(TUF + "targets.json").content
    a = published.targets.to_dict()
    a["version"] = 2
    b = json.loads(json.dumps(a))
    b["targets"]["shown"]["hashes"]["sha256"] = b64encode(OTHER)
    file_b = json.loads(signed_raw(b, published.targets_key))
    data = signed_raw(a, published.targets_key, Signed=file_b["signed"], Signatures=file_b["signatures"])
    status, payload = post(client, {"targets": data})
    assert status == 400
    found = detail(payload)
    assert found["Name"] == "ErrBadTargets" and "'Signed' is read as 'signed'" in found["Message"]
    assert client.get(TUF + "targets.json").content == before


@pytest.mark.parametrize(
    ("where", "key"),
    [(("targets", "shown"), "Hashes"), (("delegations",), "Roles"), ((), "Targets")],
)
def test_fold_variants_inside_signed_are_refused(
    client: TestClient, published: Repo, where: tuple[str, ...], key: str
) -> None:
    assert published.targets is not None
    doc = published.targets.to_dict()
    doc["version"] = 2
    node = doc
    for step in where:
        node = node[step]
    node[key] = {}
    status, payload = post(client, {"targets": signed_raw(doc, published.targets_key)})
    assert status == 400 and detail(payload)["Name"] == "ErrBadTargets"


def test_a_folded_root_is_refused_as_a_bad_root(client: TestClient) -> None:
    repo = docker_repo(client)
    files = repo.first_publish()
    assert repo.root is not None
    root = json.loads(files["root"])
    root["Signed"] = root["signed"]
    files["root"] = json.dumps(root).encode()
    status, payload = post(client, files)
    assert status == 400 and detail(payload)["Name"] == "ErrBadRoot"
    assert client.get(TUF + "root.json").status_code == 404


def test_duplicate_keys_in_an_upload_are_refused(client: TestClient, published: Repo) -> None:
    assert published.targets is not None
    published.targets.version = 2
    data = Envelope.sign(published.targets, [published.targets_key]).data
    doubled = data.replace(b'"targets":{', b'"targets":{"shown":{"hashes":{},"length":1},', 1)
    status, payload = post(client, {"targets": doubled})
    assert status == 400 and "duplicate object key 'shown'" in detail(payload)["Message"]


def test_integer_forms_go_refuses_are_refused(client: TestClient, published: Repo) -> None:
    assert published.targets is not None
    published.targets.version = 2
    data = Envelope.sign(published.targets, [published.targets_key]).data
    assert b'"version":2' in data
    for literal in (b"2.0", b"2e0", b"9007199254740993"):
        status, payload = post(client, {"targets": data.replace(b'"version":2', b'"version":' + literal)})
        assert status == 400 and detail(payload)["Name"] == "ErrBadTargets", literal


def _delegated(client: TestClient, paths: list[str]) -> tuple[Repo, PrivateKey]:
    repo = docker_repo(client)
    signer = PrivateKey.generate()
    assert repo.targets is not None
    repo.targets.delegations.keys[signer.key_id] = signer.public_key
    repo.targets.delegations.roles.append(DelegatedRole("targets/alice", [signer.key_id], 1, paths))
    assert post(client, repo.first_publish())[0] == 200
    return repo, signer


def test_targets_outside_a_delegations_paths_are_refused(client: TestClient) -> None:
    _, signer = _delegated(client, ["release-"])
    body = new_targets(now=GoTime.now(), role="targets/alice")
    body.targets["release-1"] = FileMeta(401, {"sha256": DIGEST})
    assert post(client, {"targets/alice": Envelope.sign(body, [signer]).data})[0] == 200
    body.targets["latest"] = FileMeta(401, {"sha256": OTHER})  # outside "release-"
    body.version = 2
    status, payload = post(client, {"targets/alice": Envelope.sign(body, [signer]).data})
    assert status == 400
    found = detail(payload)
    assert found["Name"] == "ErrBadTargets" and "outside its delegated paths" in found["Message"]
    stored = Envelope.from_bytes(client.get(TUF + "targets/alice.json").content, expect=Targets).signed
    assert set(stored.targets) == {"release-1"}


def test_a_delegation_without_paths_can_sign_nothing(client: TestClient) -> None:
    _, signer = _delegated(client, [])
    body = new_targets(now=GoTime.now(), role="targets/alice")
    body.targets["1.0"] = FileMeta(401, {"sha256": DIGEST})
    status, payload = post(client, {"targets/alice": Envelope.sign(body, [signer]).data})
    assert status == 400 and "outside its delegated paths" in detail(payload)["Message"]


def test_delegation_key_ids_must_match_the_key_content(client: TestClient, published: Repo) -> None:
    assert published.targets is not None
    signer, other = PrivateKey.generate(), PrivateKey.generate()
    published.targets.delegations.keys[other.key_id] = signer.public_key  # listed under the wrong ID
    published.targets.delegations.roles.append(DelegatedRole("targets/alice", [other.key_id], 1, [""]))
    published.targets.version = 2
    status, payload = post(
        client, {"targets": Envelope.sign(published.targets, [published.targets_key]).data}
    )
    assert status == 400
    found = detail(payload)
    assert found["Name"] == "ErrBadTargets" and "key ID is not valid for key content" in found["Message"]
    assert set(current_targets(client).delegations.keys) == set()


def test_control_characters_in_target_names_are_stored_as_valid_json(
    client: TestClient, published: Repo
) -> None:
    assert published.targets is not None
    name = "odd\x01\ttag\n"
    published.targets.targets[name] = FileMeta(401, {"sha256": DIGEST})
    published.targets.version = 2
    status, _ = post(client, {"targets": Envelope.sign(published.targets, [published.targets_key]).data})
    assert status == 200
    served = client.get(TUF + "targets.json").content
    assert json.loads(served)["signed"]["targets"][name]["length"] == 401
    assert name in current_targets(client).targets
