"""Golden tests: every metadata file made by the real notary 0.7 and docker CLI.

Each file parses, re-serialises byte for byte (from the parsed value and from the typed model), and
verifies: root against its own certificates (and the previous root along the rotation chain),
targets/snapshot/timestamp against root, delegations against their parents, and the hash chain
timestamp -> snapshot -> every other file.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from notar.encoding import GoTime, canonical_json
from notar.tuf import (
    Envelope,
    RoleError,
    RoleKeys,
    Root,
    Snapshot,
    Targets,
    ThresholdError,
    Timestamp,
    check_expiry,
    check_hashes,
    delegated_role_keys,
    encode_file,
    roles,
    verify_root,
    verify_signatures,
)
from tests.conftest import VECTORS

# The vectors were made on 2026-11-26; their timestamps expire 14 days later. A fixed clock keeps
# these tests independent of the day they run.
NOW = GoTime.parse("2026-11-27T00:00:00Z")

REPOS = {
    "notary-cli/server/01-targets-only": "127.0.0.1:5000/lab/app",
    "notary-cli/server/02-delegations": "127.0.0.1:5000/lab/app",
    "notary-cli/server/03-final-rotated": "127.0.0.1:5000/lab/app",
    "notary-cli/client/trust/tuf/127.0.0.1:5000/lab/app/metadata": "127.0.0.1:5000/lab/app",
    "docker-cli/server": "127.0.0.1:5000/lab/dapp",
    "docker-cli/docker-config/trust/tuf/127.0.0.1:5000/lab/dapp/metadata": "127.0.0.1:5000/lab/dapp",
    "docker-cli/docker-config/trust/tuf/127.0.0.1:5000/lab/dapp-single/metadata": (
        "127.0.0.1:5000/lab/dapp-single"
    ),
}


def metadata_files() -> list[Path]:
    files = []
    for path in sorted(VECTORS.rglob("*.json")):
        if "http-captures" in path.parts or path.name in ("keys.json",) or path.name.endswith(".key.json"):
            continue
        files.append(path)
    return files


def role_of(path: Path) -> str | None:
    return f"targets/{path.stem}" if path.parent.name == "targets" else None


@pytest.mark.parametrize("path", metadata_files(), ids=lambda p: str(p.relative_to(VECTORS)))
def test_parses_and_reserialises_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    env = Envelope.from_bytes(data, role=role_of(path))
    assert env.data == data
    assert encode_file(env.signed_bytes, env.signatures) == data
    # the typed model writes exactly the same body
    assert canonical_json(env.signed.to_dict()) == env.signed_bytes
    assert env.go_reencoded() == data


def test_all_vector_files_are_covered() -> None:
    assert len(metadata_files()) >= 45


@pytest.mark.parametrize("repo", list(REPOS), ids=str)
def test_repository_verifies(repo: str) -> None:
    gun = REPOS[repo]
    base = VECTORS / repo
    root = Envelope.from_bytes((base / "root.json").read_bytes(), expect=Root)
    verify_root(root, gun, now=NOW)
    check_expiry(root.signed, NOW, "root")

    timestamp = Envelope.from_bytes((base / "timestamp.json").read_bytes(), expect=Timestamp)
    verify_signatures(timestamp, RoleKeys.from_root(root.signed, roles.TIMESTAMP))
    check_expiry(timestamp.signed, NOW, "timestamp")

    snapshot_bytes = (base / "snapshot.json").read_bytes()
    check_hashes(snapshot_bytes, timestamp.signed.meta["snapshot"], "snapshot", check_length=True)
    snapshot = Envelope.from_bytes(snapshot_bytes, expect=Snapshot)
    verify_signatures(snapshot, RoleKeys.from_root(root.signed, roles.SNAPSHOT))
    check_hashes(root.data, snapshot.signed.meta["root"], "root", check_length=True)

    targets_bytes = (base / "targets.json").read_bytes()
    check_hashes(targets_bytes, snapshot.signed.meta["targets"], "targets", check_length=True)
    targets = Envelope.from_bytes(targets_bytes, expect=Targets)
    verify_signatures(targets, RoleKeys.from_root(root.signed, roles.TARGETS))

    trusted: dict[str, Targets] = {"targets": targets.signed}
    unverifiable = []
    for path in sorted((base / "targets").glob("*.json")) if (base / "targets").is_dir() else []:
        role = role_of(path)
        assert role is not None
        data = path.read_bytes()
        check_hashes(data, snapshot.signed.meta[role], role, check_length=True)
        env = Envelope.from_bytes(data, expect=Targets, role=role)
        try:
            verify_signatures(env, delegated_role_keys(role, trusted))
        except (ThresholdError, RoleError):
            unverifiable.append(role)
            continue
        trusted[role] = env.signed
    # In dapp-single, docker's `trust signer remove alice` deleted the targets/alice delegation and left
    # targets/releases with no keys ("keyids":null). The cached files stay behind but no longer verify,
    # exactly as for notary, which ignores them.
    expected = ["targets/alice", "targets/releases"] if repo.endswith("dapp-single/metadata") else []
    assert unverifiable == expected


def test_root_rotation_chain() -> None:
    base = VECTORS / "notary-cli/server/03-final-rotated"
    gun = REPOS["notary-cli/server/03-final-rotated"]
    chain = [Envelope.from_bytes((base / f"{n}.root.json").read_bytes(), expect=Root) for n in range(1, 5)]
    assert [r.signed.version for r in chain] == [1, 2, 3, 4]
    verify_root(chain[0], gun, now=NOW)
    for prev, new in itertools.pairwise(chain):
        verify_root(new, gun, trusted=prev.signed, now=NOW)
    assert chain[-1].data == (base / "root.json").read_bytes()
    # the root key really changed on the way (v4 is signed by the old and the new key)
    assert chain[0].signed.roles["root"].keyids != chain[-1].signed.roles["root"].keyids
    assert len(chain[-1].signatures) >= 2


def test_root_of_another_gun_is_refused() -> None:
    from notar.tuf import RootError

    root = Envelope.from_bytes((VECTORS / "docker-cli/server/root.json").read_bytes(), expect=Root)
    with pytest.raises(RootError, match="unable to retrieve valid leaf certificates"):
        verify_root(root, "127.0.0.1:5000/lab/other", now=NOW)


def test_rotation_needs_the_previous_root() -> None:
    from notar.tuf import RootError

    notary_root = Envelope.from_bytes(
        (VECTORS / "notary-cli/server/01-targets-only/root.json").read_bytes(), expect=Root
    )
    rotated = Envelope.from_bytes(
        (VECTORS / "notary-cli/server/03-final-rotated/4.root.json").read_bytes(), expect=Root
    )
    v3 = Envelope.from_bytes(
        (VECTORS / "notary-cli/server/03-final-rotated/3.root.json").read_bytes(), expect=Root
    )
    verify_root(rotated, "127.0.0.1:5000/lab/app", trusted=v3.signed, now=NOW)
    docker_root = Envelope.from_bytes((VECTORS / "docker-cli/server/root.json").read_bytes(), expect=Root)
    with pytest.raises(RootError, match="could not rotate trust"):
        verify_root(rotated, "127.0.0.1:5000/lab/app", trusted=docker_root.signed, now=NOW)
    assert notary_root.signed.version == 1


def test_expired_at_a_later_clock() -> None:
    from notar.tuf import ExpiredError

    ts = Envelope.from_bytes((VECTORS / "docker-cli/server/timestamp.json").read_bytes(), expect=Timestamp)
    later = ts.signed.expires.add(seconds=1)
    with pytest.raises(ExpiredError, match=r"timestamp expired at \w{3} \w{3} \d+ \d\d:\d\d:\d\d UTC 20\d\d"):
        check_expiry(ts.signed, later, "timestamp")
