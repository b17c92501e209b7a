"""The moving scenarios (tests/moving/scenarios.py) build what they promise on the Go notary-server with
notary-signer, as deployed, and on `notar server`: checked by fresh clients (notary CLI, docker) that trust
on first use, and by the root history served over https."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lab import NotarServer, NotaryCLI, NotaryServer, loopback_get
from tests.lab.docker import DockerCLI
from tests.moving.scenarios import (
    DockerRepository,
    Repository,
    docker_trust_repository,
    notary_cli_repository,
    notary_delegations,
    notary_listing,
)

pytestmark = pytest.mark.peers


def _server(request: pytest.FixtureRequest, kind: str) -> NotaryServer | NotarServer:
    """``go``: a fresh notary-server + notary-signer; ``notar``: the session's `notar server`."""
    name = "notary_server_with_signer" if kind == "go" else "notar_server"
    server = request.getfixturevalue(name)
    assert isinstance(server, NotaryServer | NotarServer)
    return server


def _check_repository(repo: Repository, tmp_path: Path) -> NotaryCLI:
    """What every scenario must show, to its own client and to a fresh one (TOFU); returns the fresh one."""
    fresh = NotaryCLI(repo.server_url, repo.ca, tmp_path / "fresh-trust", home=tmp_path / "fresh-home")
    for cli in (repo.notary(), fresh):
        assert notary_listing(cli, repo.gun) == repo.expected_listing()
        for role in repo.delegations:
            assert notary_listing(cli, repo.gun, role) == repo.expected_listing(role), role
        assert notary_delegations(cli, repo.gun) == repo.delegations
    for role, names in repo.revoked.items():
        assert not set(names) & set(repo.targets.get(role, {})), role
        listed = {row.name for row in notary_listing(fresh, repo.gun, role)}
        assert not set(names) & listed, (role, listed)

    # the root history as served: versions 1..N, each N.root.json its own version
    assert repo.root_version == len(repo.root_history)
    for n, raw in enumerate(repo.root_history, start=1):
        assert json.loads(raw)["signed"]["version"] == n
    status, body = loopback_get(f"{repo.server_url}/v2/{repo.gun}/_trust/tuf/root.json", ca=repo.ca)
    assert status == 200 and body == repo.root_history[-1]

    # the keys a later test needs are in the trust dir: root (every version's), targets, delegations
    private = {p.stem for p in (repo.trust_dir / "private").glob("*.key")}
    for role, ids in repo.keys.items():
        assert set(ids) <= private, role
    assert len(repo.keys["targets"]) == 1
    assert ("snapshot" in repo.keys) is not repo.snapshot_on_server
    assert (repo.trust_dir / "tuf" / repo.gun / "metadata" / "root.json").is_file()  # the client's cache
    return fresh


@pytest.mark.parametrize(
    ("kind", "server_snapshot"),
    [("go", False), ("go", True), ("notar", True)],
    ids=["go-signer-client-snapshot", "go-signer-server-snapshot", "notar-server-snapshot"],
)
def test_notary_cli_repository(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, server_snapshot: bool
) -> None:
    server = _server(request, kind)
    repo = notary_cli_repository(server.url, server.ca, tmp_path / "build", server_snapshot=server_snapshot)
    _check_repository(repo, tmp_path)

    assert repo.kind == "notary-cli" and repo.snapshot_on_server is server_snapshot
    assert repo.root_version == (5 if server_snapshot else 4)
    assert sorted(repo.delegations) == ["targets/alice", "targets/releases"]
    assert repo.delegations["targets/alice"].paths == ("alice/",)
    assert repo.delegations["targets/releases"].paths == ("",)
    for role, delegation in repo.delegations.items():
        assert repo.keys[role] == delegation.key_ids  # the delegation's private key is in the trust dir
    assert set(repo.targets["targets"]) == {"1.0", "config.json"}
    assert repo.targets["targets"]["config.json"].sha512  # added from a file: sha256 + sha512
    assert set(repo.targets["targets/releases"]) == {"2.0", "3.0"}
    assert set(repo.targets["targets/alice"]) == {"alice/tool", "alice/tool-beta"}
    assert repo.revoked == {"targets": ("old",), "targets/releases": ("2.1-rc1",)}

    # root rotations: every root version after the first two lists another root key (x509 IDs)
    root_ids = repo.root_key_ids()
    assert all(len(ids) == 1 for ids in root_ids)
    assert len({ids for ids in root_ids}) == 3, root_ids  # initial key + 2 rotations
    assert len(repo.keys["root"]) == 3  # and all three private keys are kept locally
    if (
        kind == "go"
    ):  # the server's keys came from notary-signer (key_algorithm ecdsa; local would be ed25519)
        root = json.loads(repo.root_history[-1])["signed"]
        server_roles = ["timestamp", "snapshot"] if server_snapshot else ["timestamp"]
        for role in server_roles:
            (key_id,) = root["roles"][role]["keyids"]
            assert root["keys"][key_id]["keytype"] == "ecdsa", role


@pytest.mark.parametrize("kind", ["go", "notar"], ids=["go-signer", "notar"])
def test_docker_trust_repository(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> None:
    server = _server(request, kind)
    repo = docker_trust_repository(server.url, server.ca, tmp_path / "build", rotate_root=True)
    _check_repository(repo, tmp_path)
    assert isinstance(repo, DockerRepository) and repo.snapshot_on_server
    assert repo.root_version == 2 and len(set(repo.root_key_ids())) == 2
    assert sorted(repo.delegations) == ["targets/alice", "targets/bob", "targets/releases"]
    assert repo.delegations["targets/releases"].key_ids == tuple(sorted(repo.signers.values()))
    assert repo.keys["alice"] == (repo.signers["alice"],) and repo.keys["bob"] == (repo.signers["bob"],)
    assert repo.signed_tags == {
        "1.0": (repo.targets["targets"]["1.0"].sha256, ("alice",)),
        "2.0": (repo.targets["targets"]["2.0"].sha256, ("alice", "bob")),
        "2.1-rc1": (repo.targets["targets"]["2.1-rc1"].sha256, ("Repo Admin",)),
    }

    # a fresh docker client (TOFU) sees exactly what the builder's client recorded
    fresh = DockerCLI(repo.server_url, repo.ca, tmp_path / "fresh-docker")
    assert fresh.inspect(repo.gun) == repo.inspect
    assert fresh.pretty(repo.gun) == repo.pretty
    assert repo.docker().inspect(repo.gun) == repo.inspect  # and the builder's own config still works
    doc: dict[str, Any] = repo.inspect[0]
    assert {s["Name"]: [k["ID"] for k in s["Keys"]] for s in doc["Signers"]} == {
        "alice": [repo.signers["alice"]],
        "bob": [repo.signers["bob"]],
    }
    assert [a["Name"] for a in doc["AdministrativeKeys"]] == ["Root", "Repository"]


def test_notary_server_with_signer_uses_the_signer(notary_server_with_signer: NotaryServer) -> None:
    """Keys come from notary-signer (ecdsa, as configured), not from a local trust service (ed25519)."""
    server = notary_server_with_signer
    assert server.signer is not None and server.signer.process.running()
    config = json.loads(server.config.read_text())
    assert config["trust_service"]["type"] == "remote"
    assert config["trust_service"]["port"] == str(server.signer.port)
    status, body = loopback_get(
        f"{server.url}/v2/127.0.0.1:5000/moving/probe/_trust/tuf/timestamp.key", ca=server.ca
    )
    assert status == 200, body
    assert json.loads(body)["keytype"] == "ecdsa"
