"""The client update workflow under attack: a tampering trust server (tests/client/swizzler.py).

Each attack asserts what the user sees (exception type and a helpful message) and that the cache still
holds the last good bytes afterwards. Notary's rules are in /work/shared/docs/notary-v1-protocol.md §6.5
(update workflow), §6.7 (root rotation) and §6.8 (trust pinning).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID

from notar.client import (
    NotSignedError,
    RepositoryNotFoundError,
    TrustDataInvalidError,
    TrustedRepo,
    TrustServerError,
    TrustServerUnavailableError,
    Updater,
)
from notar.client.remote import MAX_ROOT_BYTES, MAX_TIMESTAMP_BYTES
from notar.crypto import PrivateKey, PublicKey
from notar.errors import NotarError
from notar.tuf import Envelope, FileMeta, Root, Targets, TrustPinning, new_targets, roles
from tests.client.swizzler import (
    CHUNK,
    GUN,
    NOW,
    RELEASES,
    URL,
    Clock,
    RootKey,
    Swizzler,
    cached_files,
    target,
)

OTHER_GUN = "example.com/evil/app"


# -- fixtures and helpers ---------------------------------------------------------------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_sw() -> Iterator[Callable[..., Swizzler]]:
    """Build extra swizzlers (other keys, signers, GUN in the certificate); all closed at teardown."""
    made: list[Swizzler] = []

    def make(**options: Any) -> Swizzler:
        made.append(Swizzler(**options))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def sw(make_sw: Callable[..., Swizzler]) -> Swizzler:
    """The default repository: targets, targets/releases and targets/alice, all signed by their keys."""
    return make_sw()


@pytest.fixture
def trust_dir(tmp_path: Path) -> Path:
    return tmp_path / "trust"


@pytest.fixture
def client(sw: Swizzler, trust_dir: Path, clock: Clock) -> Updater:
    return sw.updater(trust_dir, clock=clock)


def refused(up: Updater, trust_dir: Path, error: type[NotarError], *needles: str) -> str:
    """Refresh must fail with *error* naming every needle, and leave the cache exactly as it was."""
    before = cached_files(trust_dir, up.gun)
    with pytest.raises(error) as info:
        up.refresh()
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert cached_files(trust_dir, up.gun) == before, "a refused update changed the cache"
    return message


def digest_of(repo: TrustedRepo, tag: str) -> bytes:
    return repo.resolve(tag).meta.hashes["sha256"]


def sha(text: str) -> bytes:
    return target(text).hashes["sha256"]


# -- happy path -------------------------------------------------------------------------------------------
def test_first_use_resolves_like_docker(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    assert cached_files(trust_dir) == {}
    repo = client.refresh()
    assert repo.root.signed.version == 1 and repo.ignored == {}
    assert set(repo.targets) == {roles.TARGETS, RELEASES, "targets/alice"}

    match = repo.resolve("1.0")  # in targets/releases and in targets: releases wins
    assert (match.role, match.meta.hashes["sha256"]) == (RELEASES, sha("releases:1.0"))
    match = repo.resolve("latest")  # only in targets
    assert (match.role, match.meta.hashes["sha256"]) == (roles.TARGETS, sha("targets:latest"))
    with pytest.raises(NotSignedError, match=r"^No trust data for alice-only$"):
        repo.resolve("alice-only")  # signed, but only in targets/alice: docker does not count it
    with pytest.raises(NotSignedError, match=r"^No valid trust data for missing$"):
        repo.resolve("missing")

    served = {role: env.data for role, env in sw.envs.items()}
    assert cached_files(trust_dir) == served


def test_second_refresh_only_fetches_the_timestamp(sw: Swizzler, client: Updater) -> None:
    client.refresh()
    sw.clear_log()
    assert digest_of(client.refresh(), "1.0") == sha("releases:1.0")
    assert sw.requests == ["timestamp.json"]


def test_update_fetches_changed_roles_by_hash(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(RELEASES, tags={"1.0": target("releases:1.0-fixed")})
    sw.clear_log()
    repo = client.refresh()
    assert digest_of(repo, "1.0") == sha("releases:1.0-fixed")
    assert sw.requests == ["timestamp.json", sw.by_hash(roles.SNAPSHOT), sw.by_hash(RELEASES)]
    assert cached_files(trust_dir)[RELEASES] == sw.envs[RELEASES].data


def test_missing_repository(make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock) -> None:
    sw = make_sw()
    up = sw.updater(trust_dir, clock=clock)
    up.gun = "example.com/team/missing"  # the server only knows GUN: 404 with notary's error body
    with pytest.raises(
        RepositoryNotFoundError, match="remote trust data does not exist for example.com/team/missing"
    ):
        up.refresh()


# -- freeze: expired metadata -----------------------------------------------------------------------------
def test_frozen_timestamp_is_refused(sw: Swizzler, client: Updater, trust_dir: Path, clock: Clock) -> None:
    client.refresh()
    clock.advance(days=15)  # the timestamp lives 14 days; the server keeps serving the old one
    refused(
        client, trust_dir, TrustDataInvalidError, f"trust data for {GUN} is invalid", "timestamp expired at"
    )


def test_frozen_timestamp_on_first_use(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    clock.advance(days=15)
    refused(sw.updater(trust_dir, clock=clock), trust_dir, TrustDataInvalidError, "timestamp expired at")
    assert cached_files(trust_dir) == {}


def test_expired_snapshot_is_refused(sw: Swizzler, client: Updater, trust_dir: Path, clock: Clock) -> None:
    client.refresh()
    sw.publish_snapshot(expires=NOW.add(days=1))
    sw.now = clock.advance(days=2)
    sw.publish_timestamp()  # a fresh timestamp over the stale snapshot
    refused(client, trust_dir, TrustDataInvalidError, "snapshot expired at")


def test_expired_targets_is_refused(sw: Swizzler, client: Updater, trust_dir: Path, clock: Clock) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")}, expires=NOW.add(days=1))
    sw.now = clock.advance(days=2)
    sw.publish_timestamp()
    refused(client, trust_dir, TrustDataInvalidError, "targets expired at")


def test_expired_delegation_is_ignored(sw: Swizzler, client: Updater, trust_dir: Path, clock: Clock) -> None:
    client.refresh()
    sw.update(RELEASES, expires=NOW.add(days=1))
    sw.now = clock.advance(days=2)
    sw.publish_timestamp()
    repo = client.refresh()
    assert RELEASES not in repo.targets
    assert "targets/releases expired at" in repo.ignored[RELEASES]
    match = repo.resolve("1.0")  # falls back to targets
    assert (match.role, match.meta.hashes["sha256"]) == (roles.TARGETS, sha("targets:1.0"))
    with pytest.raises(NotSignedError, match=r"^No valid trust data for 2\.0$"):
        repo.resolve("2.0")  # only releases signed it
    assert "targets/alice" in repo.targets
    assert cached_files(trust_dir).get(RELEASES) != sw.envs[RELEASES].data  # the expired file is not cached


# -- rollback ---------------------------------------------------------------------------------------------
def _three_versions(sw: Swizzler) -> None:
    sw.update(roles.TARGETS, tags={"2.0": target("targets:2.0")})
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    assert sw.envs[roles.TIMESTAMP].signed.version == 3
    assert sw.envs[roles.SNAPSHOT].signed.version == 3
    assert sw.envs[roles.TARGETS].signed.version == 3


def test_timestamp_rollback(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    _three_versions(sw)
    client.refresh()
    sw.rollback(roles.TIMESTAMP, 2)
    refused(
        client, trust_dir, TrustDataInvalidError, "version 2 is lower than current version 3 for timestamp"
    )


def test_snapshot_rollback(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    _three_versions(sw)
    client.refresh()
    sw.rollback(roles.SNAPSHOT, 2)  # a new timestamp (v4) names the old snapshot
    assert sw.envs[roles.TIMESTAMP].signed.version == 4
    refused(
        client, trust_dir, TrustDataInvalidError, "version 2 is lower than current version 3 for snapshot"
    )


def test_targets_rollback(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    _three_versions(sw)
    client.refresh()
    sw.rollback(roles.TARGETS, 2)  # new snapshot and timestamp name the old targets
    refused(client, trust_dir, TrustDataInvalidError, "version 2 is lower than current version 3 for targets")


def test_delegation_rollback_is_not_forgotten(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    sw.update(RELEASES, tags={"1.0": target("releases:1.0-fixed")})
    good = sw.envs[RELEASES].data
    assert digest_of(client.refresh(), "1.0") == sha("releases:1.0-fixed")
    sw.rollback(RELEASES, 1)  # snapshot and timestamp re-signed around releases v1 (tag 1.0 -> vulnerable)
    for attempt in range(2):
        try:
            repo = client.refresh()
        except TrustDataInvalidError:
            continue  # notary refuses the whole update (ErrLowVersion is fatal for delegations too)
        match = repo.find("1.0", RELEASES)
        assert match is None, f"refresh {attempt + 1} trusts targets/releases version 1 again"
    assert cached_files(trust_dir)[RELEASES] == good, "the rollback reference for targets/releases was lost"


# -- mix and match ----------------------------------------------------------------------------------------
def test_snapshot_bytes_do_not_match_the_timestamp(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    snap = sw.envs[roles.SNAPSHOT]
    other = Envelope.sign(snap.signed, [sw.snapshot_key])  # same body and length, other signature bytes
    assert other.data != snap.data and len(other.data) == len(snap.data)
    sw.tamper(sw.by_hash(roles.SNAPSHOT), other.data)
    refused(client, trust_dir, TrustDataInvalidError, "sha256 checksum for snapshot did not match")


def test_snapshot_of_another_version_at_the_hash_url(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    old = sw.envs[roles.SNAPSHOT]
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    sw.tamper(sw.by_hash(roles.SNAPSHOT), old.data)
    refused(client, trust_dir, TrustDataInvalidError, "snapshot")


def test_targets_bytes_do_not_match_the_snapshot(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    env = sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    other = Envelope.sign(env.signed, sw.targets_keys)
    assert other.data != env.data and len(other.data) == len(env.data)
    sw.tamper(sw.by_hash(roles.TARGETS), other.data)
    refused(client, trust_dir, TrustDataInvalidError, "sha256 checksum for targets did not match")


def test_swapped_delegation_is_never_trusted(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    good = sw.envs[RELEASES].data
    sw.update(RELEASES, tags={"3.0": target("releases:3.0")})
    body = Targets.from_dict(json.loads(sw.envs[RELEASES].data)["signed"])
    body.targets["1.0"] = target("releases:1.0-evil")  # validly signed by alice, but not what snapshot names
    evil = Envelope.sign(body, sw.default_signers(RELEASES))
    sw.tamper(sw.by_hash(RELEASES), evil.data)
    try:
        repo = client.refresh()
    except TrustDataInvalidError:
        assert cached_files(trust_dir)[RELEASES] == good
        return
    assert "checksum for targets/releases did not match" in repo.ignored[RELEASES]
    assert digest_of(repo, "1.0") == sha("targets:1.0")
    assert cached_files(trust_dir).get(RELEASES) != evil.data


# -- endless data -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_endless_timestamp(sw: Swizzler, client: Updater, trust_dir: Path, declare_length: bool) -> None:
    client.refresh()
    sw.clear_log()
    sw.declare_length = declare_length
    sw.serve_endless("timestamp.json", sw.envs[roles.TIMESTAMP].data, 64 * MAX_TIMESTAMP_BYTES)
    refused(client, trust_dir, TrustServerError, "timestamp.json is larger than 1048576 bytes")
    assert sw.max_sent("timestamp.json") <= (MAX_TIMESTAMP_BYTES + CHUNK if not declare_length else 0)


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("role", [roles.SNAPSHOT, roles.TARGETS])
def test_padded_file_beyond_recorded_length(
    sw: Swizzler, client: Updater, trust_dir: Path, role: str, declare_length: bool
) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    name, data = sw.by_hash(role), sw.envs[role].data
    sw.clear_log()
    sw.declare_length = declare_length
    sw.serve_endless(name, data, 64 * 1024 * 1024)  # the right bytes, then 64 MiB of padding
    refused(client, trust_dir, TrustServerError, f"{name} is larger than {len(data)} bytes")
    assert sw.max_sent(name) <= (len(data) + CHUNK if not declare_length else 0)


def test_padded_delegation_fails_the_update(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(RELEASES, tags={"3.0": target("releases:3.0")})
    name, data = sw.by_hash(RELEASES), sw.envs[RELEASES].data
    sw.clear_log()
    sw.declare_length = False
    sw.serve_endless(name, data, 64 * 1024 * 1024)
    # like Go notary: only an expired or under-signed delegation is ignored; a malicious server is an error
    refused(client, trust_dir, TrustServerError, "is larger than")
    assert sw.max_sent(name) <= len(data) + CHUNK


def test_endless_root_on_first_use(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    sw.serve_endless("root.json", sw.envs[roles.ROOT].data, 2 * MAX_ROOT_BYTES)
    refused(sw.updater(trust_dir, clock=clock), trust_dir, TrustServerError, "root.json is larger than")
    assert sw.max_sent("root.json") == 0  # refused on Content-Length, nothing streamed


# -- signatures -------------------------------------------------------------------------------------------
def test_targets_signed_by_a_key_not_in_root(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"1.0": target("evil")}, signers=[PrivateKey.generate()])
    refused(client, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for targets")


def test_targets_signed_by_the_snapshot_key(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"1.0": target("evil")}, signers=[sw.snapshot_key])
    refused(client, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for targets")


def test_unsigned_targets(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"1.0": target("evil")}, signers=[])
    refused(client, trust_dir, TrustDataInvalidError, "no signatures")


def test_timestamp_signed_by_another_key(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.publish_timestamp(signers=[PrivateKey.generate()])
    refused(client, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for timestamp")


def test_snapshot_signed_by_another_key(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.publish_snapshot(signers=[sw.timestamp_key])
    refused(client, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for snapshot")


def test_threshold_two_needs_two_distinct_keys(
    make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock
) -> None:
    sw = make_sw(targets_keys=2, targets_threshold=2)
    up = sw.updater(trust_dir, clock=clock)
    assert digest_of(up.refresh(), "latest") == sha("targets:latest")  # both keys signed
    a, _b = sw.targets_keys
    sw.update(roles.TARGETS, tags={"latest": target("evil")}, signers=[a])
    refused(up, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for targets")
    sw.update(roles.TARGETS, tags={"latest": target("evil")}, signers=[a, a])  # one key twice is still one
    refused(up, trust_dir, TrustDataInvalidError, "valid signatures did not meet threshold for targets")


def test_signature_key_id_not_matching_key_content(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    key = sw.targets_keys[0]
    wrong = "ab" * 32

    def mislabel(root: Root) -> None:
        del root.keys[key.key_id]
        root.keys[wrong] = key.public_key
        root.roles[roles.TARGETS].keyids = [wrong]

    sw.update_root(mislabel)
    sw.update(roles.TARGETS, signers=[(key, wrong)])
    up = sw.updater(trust_dir, clock=clock)
    refused(up, trust_dir, TrustDataInvalidError, "key ID is not valid for key content")
    assert cached_files(trust_dir) == {}


def test_delegation_key_id_not_matching_key_content_is_ignored(sw: Swizzler, client: Updater) -> None:
    client.refresh()
    alice = sw.signer_keys["alice"]
    wrong = "cd" * 32

    def mislabel(top: Targets) -> None:
        top.delegations.keys[wrong] = alice.public_key
        entry = top.delegations.role(RELEASES)
        assert entry is not None
        entry.keyids = [wrong]

    sw.update(roles.TARGETS, mutate=mislabel)
    sw.update(RELEASES, tags={"1.0": target("releases:evil")}, signers=[(alice, wrong)])
    repo = client.refresh()
    assert repo.ignored[RELEASES] == "key ID is not valid for key content"
    assert digest_of(repo, "1.0") == sha("targets:1.0")


def test_delegation_signed_by_the_wrong_key_is_ignored(
    sw: Swizzler, client: Updater, trust_dir: Path
) -> None:
    client.refresh()
    mallory = PrivateKey.generate()
    sw.update(RELEASES, tags={"1.0": target("releases:evil")}, signers=[mallory])
    repo = client.refresh()
    assert RELEASES not in repo.targets
    assert "valid signatures did not meet threshold for targets/releases" in repo.ignored[RELEASES]
    match = repo.resolve("1.0")
    assert (match.role, match.meta.hashes["sha256"]) == (roles.TARGETS, sha("targets:1.0"))
    with pytest.raises(NotSignedError, match=r"^No valid trust data for 2\.0$"):
        repo.resolve("2.0")
    assert cached_files(trust_dir).get(RELEASES) != sw.envs[RELEASES].data


def test_delegation_signed_by_a_sibling_signer_is_ignored(
    make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock
) -> None:
    sw = make_sw(signers=("alice", "bob"))
    up = sw.updater(trust_dir, clock=clock)
    up.refresh()
    sw.update("targets/alice", tags={"alice-only": target("evil")}, signers=[sw.signer_keys["bob"]])
    repo = up.refresh()
    assert "targets/alice" in repo.ignored and "targets/bob" in repo.targets


def test_delegation_outside_its_paths_is_invisible(sw: Swizzler, client: Updater) -> None:
    def restrict(top: Targets) -> None:
        entry = top.delegations.role(RELEASES)
        assert entry is not None
        entry.paths = ["2."]

    sw.update(roles.TARGETS, mutate=restrict)
    repo = client.refresh()
    assert repo.ignored == {}
    assert repo.resolve("1.0").role == roles.TARGETS  # releases signed 1.0 but may only sign 2.*
    assert repo.resolve("2.0").role == RELEASES


def test_removed_signer_no_longer_counts(
    make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock
) -> None:
    sw = make_sw(signers=("alice", "bob"))  # targets/releases signed by alice
    up = sw.updater(trust_dir, clock=clock)
    repo = up.refresh()
    assert repo.resolve("1.0").role == RELEASES
    with pytest.raises(NotSignedError, match=r"^No trust data for alice-only$"):
        repo.resolve("alice-only")

    alice = sw.signer_keys["alice"].key_id

    def remove_alice(top: Targets) -> None:  # what `docker trust signer remove` publishes
        top.delegations.roles = [r for r in top.delegations.roles if r.name != "targets/alice"]
        entry = top.delegations.role(RELEASES)
        assert entry is not None
        entry.keyids.remove(alice)
        del top.delegations.keys[alice]

    sw.update(roles.TARGETS, mutate=remove_alice)  # the snapshot still lists targets/alice
    repo = up.refresh()
    assert "targets/alice" not in repo.targets
    assert "valid signatures did not meet threshold for targets/releases" in repo.ignored[RELEASES]
    assert repo.resolve("1.0").role == roles.TARGETS
    with pytest.raises(NotSignedError, match=r"^No valid trust data for alice-only$"):
        repo.resolve("alice-only")
    assert [r.name for r, _keys in repo.delegations()] == [RELEASES, "targets/bob"]

    sw.update(RELEASES, signers=[sw.signer_keys["bob"]])  # bob re-signs releases: it counts again
    repo = up.refresh()
    assert repo.resolve("1.0").role == RELEASES and repo.ignored == {}


def test_delegation_file_not_delegated_to_is_not_trusted(sw: Swizzler, client: Updater) -> None:
    mallory = PrivateKey.generate()
    body = new_targets(now=NOW, role="targets/mallory")
    body.targets["1.0"] = target("mallory:1.0")
    body.targets["mallory-only"] = target("mallory:only")
    sw.bodies["targets/mallory"] = body
    sw.signer_keys["mallory"] = mallory
    sw.update("targets/mallory")  # listed in the snapshot, but targets delegates nothing to it
    repo = client.refresh()
    assert "targets/mallory" not in repo.targets
    assert repo.resolve("1.0").role == RELEASES
    with pytest.raises(NotSignedError, match=r"^No valid trust data for mallory-only$"):
        repo.resolve("mallory-only")


def test_delegation_missing_from_the_snapshot_is_skipped(
    sw: Swizzler, client: Updater, trust_dir: Path
) -> None:
    sw.published.remove(RELEASES)
    sw.publish_snapshot()
    sw.clear_log()
    repo = client.refresh()
    assert RELEASES not in repo.targets and repo.ignored == {}
    assert repo.resolve("1.0").role == roles.TARGETS
    assert not any(name.startswith(RELEASES) for name in sw.requests)
    assert RELEASES not in cached_files(trust_dir)


# -- root rotation ----------------------------------------------------------------------------------------
def test_rotation_walks_every_root_version(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root()  # v2 signed by v1 + v2 keys
    v3 = sw.rotate_root()  # v3 signed by v2 + v3 keys (not by v1)
    sw.clear_log()
    repo = client.refresh()
    assert repo.root.signed.version == 3
    assert "root.json" in sw.requests and "2.root.json" in sw.requests
    assert cached_files(trust_dir)[roles.ROOT] == v3.data
    sw.update(roles.TARGETS, tags={"4.0": target("targets:4.0")})
    assert client.refresh().resolve("4.0").role == roles.TARGETS


def test_rotation_not_signed_by_the_trusted_root(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root(sign_with_old=False)  # v2 signed by the v2 key only
    sw.rotate_root()
    refused(client, trust_dir, TrustDataInvalidError, "could not rotate trust to a new trusted root")
    assert cached_files(trust_dir)[roles.ROOT] == sw.history[roles.ROOT][1].data


def test_rotation_missing_the_new_key_signature(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root(sign_with_new=False)  # signed by the old key only: the new root does not sign itself
    refused(client, trust_dir, TrustDataInvalidError, "failed to validate integrity of roots")


def test_rotation_to_a_certificate_for_another_gun(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root(cert_gun=OTHER_GUN)
    refused(client, trust_dir, TrustDataInvalidError, "unable to retrieve valid leaf certificates")


def test_rotation_with_a_missing_intermediate_root(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root()
    sw.rotate_root()
    del sw.files["2.root.json"]
    refused(client, trust_dir, TrustDataInvalidError, "2.root.json", "not found")


def test_intermediate_root_of_the_wrong_version(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.rotate_root()
    v3 = sw.rotate_root()
    sw.tamper("2.root.json", v3.data)  # asked for version 2, the server answers with version 3
    refused(client, trust_dir, TrustDataInvalidError, "server returned root version 3 for 2")


def test_snapshot_names_a_root_the_server_does_not_serve(
    sw: Swizzler, client: Updater, trust_dir: Path
) -> None:
    client.refresh()
    sw.publish_snapshot(meta={roles.ROOT: FileMeta.from_data(b"a root nobody can fetch")})
    refused(
        client,
        trust_dir,
        TrustDataInvalidError,
        "root changed on the server",
        "checksum for root did not match",
    )


def test_expired_root_on_first_use(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    sw.update_root(lambda root: setattr(root, "expires", NOW.add(days=1)))
    clock.advance(days=2)
    refused(sw.updater(trust_dir, clock=clock), trust_dir, TrustDataInvalidError, "root expired at")
    assert cached_files(trust_dir) == {}


def test_root_going_backwards(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    v2 = sw.rotate_root()
    up = sw.updater(trust_dir, clock=clock)
    assert up.refresh().root.signed.version == 2
    sw.rollback(roles.ROOT, 1)  # root.json is v1 again, and new snapshot/timestamp name it
    refused(up, trust_dir, TrustDataInvalidError, "root version 1 is lower than the trusted version 2")
    assert cached_files(trust_dir)[roles.ROOT] == v2.data


def test_root_for_another_gun_on_first_use(
    make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock
) -> None:
    sw = make_sw(cert_gun=OTHER_GUN)
    up = sw.updater(trust_dir, clock=clock)
    refused(up, trust_dir, TrustDataInvalidError, GUN, "unable to retrieve valid leaf certificates")
    assert cached_files(trust_dir) == {}


def test_root_with_a_plain_key_instead_of_a_certificate(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    plain = PrivateKey.generate()

    def uncertified(root: Root) -> None:
        root.keys = {k: v for k, v in root.keys.items() if not v.is_certificate}
        root.keys[plain.key_id] = plain.public_key
        root.roles[roles.ROOT].keyids = [plain.key_id]

    sw.update_root(uncertified, signers=[plain])
    refused(
        sw.updater(trust_dir, clock=clock), trust_dir, TrustDataInvalidError, "unable to retrieve valid leaf"
    )


# -- trust pinning ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [GUN, "example.com/team/*"])
def test_matching_pin(sw: Swizzler, trust_dir: Path, clock: Clock, pattern: str) -> None:
    pinning = TrustPinning(certs={pattern: [sw.root_keys[0].cert.key_id]})
    repo = sw.updater(trust_dir, clock=clock, pinning=pinning).refresh()
    assert repo.resolve("1.0").role == RELEASES


def test_pin_refuses_an_impostor_root(
    sw: Swizzler, make_sw: Callable[..., Swizzler], trust_dir: Path, clock: Clock
) -> None:
    impostor = make_sw()  # a validly signed repository for the same GUN, with other keys
    pinning = TrustPinning(certs={GUN: [sw.root_keys[0].cert.key_id]})
    up = impostor.updater(trust_dir, clock=clock, pinning=pinning)
    refused(up, trust_dir, TrustDataInvalidError, "unable to match any certificates to trust_pinning config")
    assert cached_files(trust_dir) == {}


def test_disabled_tofu_without_a_pin(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    up = sw.updater(trust_dir, clock=clock, pinning=TrustPinning(disable_tofu=True))
    refused(up, trust_dir, TrustDataInvalidError, "trust on first use is disabled")


# -- the server is down -----------------------------------------------------------------------------------
def test_server_down_uses_the_cached_timestamp(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    before = cached_files(trust_dir)
    sw.down = True
    sw.clear_log()
    repo = client.refresh()
    assert sw.requests == ["timestamp.json"]
    assert digest_of(repo, "1.0") == sha("releases:1.0")
    assert cached_files(trust_dir) == before


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_uses_the_cached_timestamp(sw: Swizzler, client: Updater, status: int) -> None:
    client.refresh()
    sw.status["timestamp.json"] = status
    assert digest_of(client.refresh(), "1.0") == sha("releases:1.0")


def test_timestamp_not_found_uses_the_cached_timestamp(sw: Swizzler, client: Updater) -> None:
    client.refresh()
    del sw.files["timestamp.json"]
    assert digest_of(client.refresh(), "1.0") == sha("releases:1.0")


def test_unauthorized_timestamp_uses_the_cached_timestamp(sw: Swizzler, client: Updater) -> None:
    client.refresh()
    sw.status["timestamp.json"] = 401
    assert digest_of(client.refresh(), "1.0") == sha("releases:1.0")


@pytest.mark.parametrize("how", ["down", "500", "404", "401"])
def test_without_offline_fallback_a_server_failure_is_a_refusal(
    sw: Swizzler, client: Updater, trust_dir: Path, how: str
) -> None:
    """``offline=False`` (the gateway): no valid answer from the server, no verified view, cache or not."""
    client.refresh()
    if how == "down":
        sw.down = True
    elif how == "404":
        del sw.files["timestamp.json"]
    else:
        sw.status["timestamp.json"] = int(how)
    client.offline = False
    with pytest.raises(NotarError):
        client.refresh()


def test_server_down_and_cached_timestamp_expired(
    sw: Swizzler, client: Updater, trust_dir: Path, clock: Clock
) -> None:
    client.refresh()
    sw.down = True
    clock.advance(days=15)
    refused(client, trust_dir, TrustServerUnavailableError, f"error contacting trust server {URL}")


def test_server_down_without_cache(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    sw.down = True
    refused(client, trust_dir, TrustServerUnavailableError, f"error contacting trust server {URL}")
    assert cached_files(trust_dir) == {}


# -- malformed files --------------------------------------------------------------------------------------
def _doc(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    assert isinstance(doc, dict)
    return doc


def _edit(change: Callable[[dict[str, Any], str], None]) -> Callable[[bytes, str], bytes]:
    def make(valid: bytes, role: str) -> bytes:
        doc = _doc(valid)
        change(doc, role)
        return json.dumps(doc).encode()

    return make


def _body_field(doc: dict[str, Any], role: str) -> None:
    """A wrong type deep inside the role-specific part of the body."""
    signed = doc["signed"]
    if role == roles.ROOT:
        signed["roles"]["targets"]["threshold"] = "1"
    elif role in (roles.TIMESTAMP, roles.SNAPSHOT):
        next(iter(signed["meta"].values()))["length"] = "1083"
    elif role == roles.TARGETS:
        signed["delegations"]["roles"][0]["paths"] = [""] * 2 + [7]
    else:
        signed["targets"]["1.0"]["hashes"] = ["sha256"]


def _missing_field(doc: dict[str, Any], role: str) -> None:
    field = {roles.ROOT: "keys", roles.TIMESTAMP: "meta", roles.SNAPSHOT: "meta"}.get(role, "version")
    del doc["signed"][field]


def _bad_key(doc: dict[str, Any], role: str) -> None:
    signed = doc["signed"]
    keys = signed["keys"] if role == roles.ROOT else signed.get("delegations", {}).get("keys")
    if keys:
        next(iter(keys.values()))["keyval"]["public"] = "%%%"
    else:
        signed["expires"] = "2030-13-45T99:00:00Z"


MALFORMED: dict[str, Callable[[bytes, str], bytes]] = {
    "empty": lambda valid, role: b"",
    "html": lambda valid, role: b"<html><body>502 Bad Gateway</body></html>",
    "array": lambda valid, role: b"[]",
    "truncated": lambda valid, role: valid[: len(valid) // 2],
    "not-utf8": lambda valid, role: valid.replace(b'"signed"', b'"sig\xffned"', 1),
    "nan": lambda valid, role: valid.replace(b'"version":', b'"version":NaN,"v":', 1),
    "fraction": lambda valid, role: valid.replace(b'"version":', b'"version":1.5,"v":', 1),
    "deep-nesting": lambda valid, role: b'{"signed":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "signed-null": _edit(lambda d, r: d.update(signed=None)),
    "signed-array": _edit(lambda d, r: d.update(signed=[d["signed"]])),
    "signatures-object": _edit(lambda d, r: d.update(signatures={"0": d["signatures"][0]})),
    "signature-types": _edit(lambda d, r: d["signatures"][0].update(keyid=7, sig=["x"])),
    "signature-base64": _edit(lambda d, r: d["signatures"][0].update(sig="not base64!")),
    "type-swapped": _edit(lambda d, r: d["signed"].update(_type="Root" if r != roles.ROOT else "Targets")),
    "version-string": _edit(lambda d, r: d["signed"].update(version="3")),
    "version-zero": _edit(lambda d, r: d["signed"].update(version=0)),
    "expires-number": _edit(lambda d, r: d["signed"].update(expires=1893553445)),
    "expires-garbage": _edit(lambda d, r: d["signed"].update(expires="next tuesday")),
    "missing-field": _edit(_missing_field),
    "body-field-type": _edit(_body_field),
    "bad-key": _edit(_bad_key),
    "lone-surrogate": lambda valid, role: valid.replace(b'"_type"', b'"\\ud800":1,"_type"', 1),
    "huge-integer": lambda valid, role: valid.replace(
        b'"version":', b'"version":' + b"9" * 5000 + b',"v":', 1
    ),
    # documents Go reads differently (red-team #11): notar must refuse them, not pick its own reading
    "go-folded-signed": _edit(lambda d, r: d.update(Signed=d["signed"], Signatures=d["signatures"])),
    "go-folded-field": _edit(lambda d, r: d["signed"].update(Version=d["signed"]["version"] + 100)),
    "duplicate-key": lambda valid, role: valid.replace(b'{"signed":', b'{"signed":{},"signed":', 1),
    "integral-fraction": lambda valid, role: re.sub(rb'"version":(\d+)', rb'"version":\1.0', valid, count=1),
    "exponent": lambda valid, role: re.sub(rb'"version":(\d+)', rb'"version":\1e0', valid, count=1),
    "beyond-2**53": lambda valid, role: valid.replace(b'"version":', b'"version":9007199254740993,"v":', 1),
}
MALFORMED_ROLES = [roles.ROOT, roles.TIMESTAMP, roles.SNAPSHOT, roles.TARGETS, RELEASES]
HUGE_INT_BUG = (
    "BUG: a JSON integer with more than 4300 digits makes json.loads raise a plain ValueError "
    "(int max_str_digits) that notar.encoding.loads_strict does not translate, so Envelope.from_bytes and "
    "Updater.refresh() let a raw ValueError escape instead of a MetadataError/TrustDataInvalidError"
)


def _malformed_cases() -> Iterator[Any]:
    for role in MALFORMED_ROLES:
        for name in MALFORMED:
            marks = []
            yield pytest.param(role, name, id=f"{role}-{name}", marks=marks if name == "huge-integer" else [])


@pytest.mark.parametrize(("role", "payload"), list(_malformed_cases()))
def test_malformed_file_gives_a_clear_error(
    sw: Swizzler, client: Updater, trust_dir: Path, role: str, payload: str
) -> None:
    client.refresh()
    before = cached_files(trust_dir)
    data = MALFORMED[payload](sw.envs[role].data, role)
    sw.serve_raw(role, data)
    try:
        repo = client.refresh()
    except NotarError as e:
        # like Go notary, a malformed file fails the whole update, delegations included (only expired or
        # under-signed delegations are ignored)
        assert isinstance(e, TrustDataInvalidError), f"{type(e).__name__}: {e}"
        assert str(e).startswith(f"trust data for {GUN} is invalid: "), str(e)
        if role != roles.TARGETS:  # targets: see test_malformed_targets_error_names_the_file
            assert role in str(e), str(e)
        assert cached_files(trust_dir) == before
        return
    except Exception as e:
        raise AssertionError(f"raw {type(e).__name__} escaped from refresh(): {e}") from e
    raise AssertionError(f"malformed {role} was accepted: {repo.ignored}")


@pytest.mark.parametrize(
    ("role", "payload"),
    [
        (roles.TARGETS, "body-field-type"),
        (roles.TARGETS, "bad-key"),
        (RELEASES, "type-swapped"),
        (RELEASES, "version-string"),
        (RELEASES, "body-field-type"),
    ],
)
def test_malformed_targets_error_names_the_file(
    sw: Swizzler, client: Updater, role: str, payload: str
) -> None:
    client.refresh()
    sw.serve_raw(role, MALFORMED[payload](sw.envs[role].data, role))
    with pytest.raises(TrustDataInvalidError) as info:
        client.refresh()
    detail = str(info.value).removeprefix(f"trust data for {GUN} is invalid: ")
    assert re.split(r"[ .:\[]", detail, maxsplit=1)[0] == role, detail


@pytest.mark.parametrize(
    "payload", ["empty", "html", "signed-null", "type-swapped", "bad-key", "deep-nesting"]
)
def test_malformed_root_on_first_use(sw: Swizzler, trust_dir: Path, clock: Clock, payload: str) -> None:
    sw.serve_raw(roles.ROOT, MALFORMED[payload](sw.envs[roles.ROOT].data, roles.ROOT))
    message = refused(sw.updater(trust_dir, clock=clock), trust_dir, TrustDataInvalidError, GUN)
    assert "root" in message
    assert cached_files(trust_dir) == {}


def _cert_with_malformed_extension(key: PrivateKey, gun: str) -> PublicKey:
    """A certificate for *gun* whose BasicConstraints extension is garbage (parsed lazily by cryptography)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gun)])
    start = NOW.to_datetime().replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key.to_crypto())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start.replace(year=start.year + 10))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x01\x02garbage"), critical=True
        )
        .sign(key.crypto, hashes.SHA256())
    )
    return PublicKey.from_certificate(cert)


def test_root_certificate_with_a_malformed_extension(sw: Swizzler, trust_dir: Path, clock: Clock) -> None:
    key = PrivateKey.generate()
    cert = _cert_with_malformed_extension(key, GUN)
    sw.root_keys = [RootKey(key, cert)]

    def swap(root: Root) -> None:
        root.keys = {k: v for k, v in root.keys.items() if not v.is_certificate}
        root.keys[cert.key_id] = cert
        root.roles[roles.ROOT].keyids = [cert.key_id]

    sw.update_root(swap)
    up = sw.updater(trust_dir, clock=clock)
    try:
        up.refresh()
    except TrustDataInvalidError as e:
        assert "root" in str(e)
        return
    except Exception as e:
        raise AssertionError(f"raw {type(e).__name__} escaped from refresh(): {e}") from e
    raise AssertionError("a root with a malformed certificate was trusted")


def test_not_found_error_body_is_not_metadata(sw: Swizzler, client: Updater, trust_dir: Path) -> None:
    client.refresh()
    sw.update(roles.TARGETS, tags={"3.0": target("targets:3.0")})
    del sw.files[sw.by_hash(roles.SNAPSHOT)]  # the timestamp names a snapshot the server does not have
    refused(client, trust_dir, TrustDataInvalidError, "not found")
