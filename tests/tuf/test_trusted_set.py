"""The trust state machine (notar.tuf.TrustedSet) on its own: bytes in, verified roles and typed errors out.

The client's update workflow, the server's upload validation, the UI and the gateway all go through it;
their own suites test it end to end. Here: the order it enforces, the publisher's order (targets before
the snapshot that vouches for them), ignorable delegations, typed rollback errors, and what it records.
"""

from __future__ import annotations

import itertools

import pytest

from notar.client import (
    MemoryCache,
    MemorySource,
    MetadataNotFoundError,
    RepositoryNotFoundError,
    TrustServerError,
    Updater,
)
from notar.crypto import PrivateKey
from notar.encoding import GoTime
from notar.tuf import (
    DelegatedRole,
    Envelope,
    ExpiredError,
    FileMeta,
    HashMismatchError,
    RoleError,
    RollbackError,
    Root,
    Snapshot,
    Targets,
    ThresholdError,
    TrustedSet,
    new_root,
    new_snapshot,
    new_targets,
    new_timestamp,
    roles,
)
from tests.client.swizzler import GUN, NOW, RootKey

RELEASES = "targets/releases"


class Repo:
    """A small valid repository signed in memory (root certificate, targets, releases, snapshot, timestamp)."""

    def __init__(self) -> None:
        self.root_key = RootKey.generate(GUN, NOW)
        self.targets_key, self.snapshot_key, self.timestamp_key = (PrivateKey.generate() for _ in range(3))
        self.signer = PrivateKey.generate()
        body = new_root(
            {
                roles.ROOT: [self.root_key.cert],
                roles.TARGETS: [self.targets_key.public_key],
                roles.SNAPSHOT: [self.snapshot_key.public_key],
                roles.TIMESTAMP: [self.timestamp_key.public_key],
            },
            now=NOW,
        )
        self.root = Envelope.sign(body, [self.root_key.signer])
        top = new_targets(now=NOW)
        top.targets["1.0"] = FileMeta(1, {"sha256": bytes(32)})
        top.delegations.keys[self.signer.key_id] = self.signer.public_key
        top.delegations.roles.append(DelegatedRole(RELEASES, [self.signer.key_id], 1, [""]))
        self.targets = Envelope.sign(top, [self.targets_key])
        releases = new_targets(now=NOW, role=RELEASES)
        releases.targets["1.0"] = FileMeta(1, {"sha256": bytes(range(32))})
        self.releases = Envelope.sign(releases, [self.signer])
        self.snapshot = self.sign_snapshot(
            {roles.ROOT: self.root, roles.TARGETS: self.targets, RELEASES: self.releases}
        )
        self.timestamp = Envelope.sign(new_timestamp(self.snapshot, now=NOW), [self.timestamp_key])

    def sign_snapshot(
        self, files: dict[str, Envelope[Root] | Envelope[Targets]], version: int = 1
    ) -> Envelope[Snapshot]:
        return Envelope.sign(new_snapshot(files, now=NOW, version=version), [self.snapshot_key])


@pytest.fixture
def repo() -> Repo:
    return Repo()


def test_reader_order_and_what_it_records(repo: Repo) -> None:
    state = TrustedSet(GUN, NOW)
    state.load_first_root(repo.root.data)
    ts = state.update_timestamp(repo.timestamp.data)
    assert ts.signed_by == {repo.timestamp_key.key_id}
    assert state.snapshot_meta() == repo.timestamp.signed.meta[roles.SNAPSHOT]
    state.update_snapshot(repo.snapshot.data)
    top = state.update_targets(roles.TARGETS, repo.targets.data)
    assert top is not None and top.signed_by == {repo.targets_key.key_id}
    assert state.children(roles.TARGETS) == [RELEASES]
    rel = state.update_targets(RELEASES, repo.releases.data, ignorable=True)
    assert rel is not None and rel.signed_by == {repo.signer.key_id} and rel.keys.paths == [""]
    assert list(state.targets) == [roles.TARGETS, RELEASES] and state.ignored == {}


def test_steps_need_the_roles_before_them(repo: Repo) -> None:
    state = TrustedSet(GUN, NOW)
    with pytest.raises(RoleError, match="no trusted root"):
        state.update_timestamp(repo.timestamp.data)
    state.load_first_root(repo.root.data)
    with pytest.raises(RoleError, match="no trusted timestamp"):
        state.snapshot_meta()
    with pytest.raises(RoleError, match="no trusted snapshot"):
        state.listed(roles.TARGETS)


def test_snapshot_must_match_the_timestamp_and_targets_the_snapshot(repo: Repo) -> None:
    state = TrustedSet(GUN, NOW)
    state.load_first_root(repo.root.data)
    state.update_timestamp(repo.timestamp.data)
    other = repo.sign_snapshot({roles.ROOT: repo.root, roles.TARGETS: repo.targets}, version=2)
    with pytest.raises(HashMismatchError) as info:
        state.update_snapshot(other.data)
    assert info.value.role == roles.SNAPSHOT
    state.update_snapshot(repo.snapshot.data)
    swapped = Envelope.sign(repo.targets.signed, [repo.targets_key])  # same body, new signature bytes
    with pytest.raises(HashMismatchError):
        state.update_targets(roles.TARGETS, swapped.data + b" ")


def test_publisher_order_snapshot_vouches_for_what_came_before(repo: Repo) -> None:
    state = TrustedSet(GUN, NOW)
    state.load_first_root(repo.root.data)
    state.update_targets(roles.TARGETS, repo.targets.data)  # no snapshot yet: checked when it comes
    state.update_targets(RELEASES, repo.releases.data)
    without_releases = repo.sign_snapshot({roles.ROOT: repo.root, roles.TARGETS: repo.targets})
    with pytest.raises(HashMismatchError, match="snapshot is missing metadata for targets/releases"):
        state.update_snapshot(without_releases.data, require_all=True)
    state.update_snapshot(repo.snapshot.data, require_all=True)


def test_a_failing_delegation_is_ignored_only_when_allowed(repo: Repo) -> None:
    bad = Envelope.sign(repo.releases.signed, [PrivateKey.generate()])
    snapshot = repo.sign_snapshot({roles.ROOT: repo.root, roles.TARGETS: repo.targets, RELEASES: bad})
    state = TrustedSet(GUN, NOW)
    state.load_first_root(repo.root.data)
    state.update_snapshot(snapshot.data)
    state.update_targets(roles.TARGETS, repo.targets.data)
    with pytest.raises(ThresholdError):
        state.update_targets(RELEASES, bad.data)
    assert state.update_targets(RELEASES, bad.data, ignorable=True) is None
    assert isinstance(state.ignored[RELEASES], ThresholdError)
    expired_later = TrustedSet(GUN, NOW.add(days=365 * 11))
    expired_later.load_anchor_root(repo.root.data)
    with pytest.raises(ExpiredError):
        expired_later.require_unexpired_root()


def test_rollback_is_a_typed_error(repo: Repo) -> None:
    newer = Envelope.sign(new_timestamp(repo.snapshot, now=NOW, version=5), [repo.timestamp_key])
    state = TrustedSet(GUN, NOW)
    state.load_first_root(repo.root.data)
    with pytest.raises(RollbackError, match="lower than current version 5"):
        state.update_timestamp(repo.timestamp.data, previous=newer.data)
    # a previous copy that no longer verifies with root's keys is no reference
    stranger = Envelope.sign(new_timestamp(repo.snapshot, now=NOW, version=9), [PrivateKey.generate()])
    assert state.update_timestamp(repo.timestamp.data, previous=stranger.data).signed.version == 1


def test_the_updater_over_an_in_memory_source(repo: Repo) -> None:
    source = MemorySource()
    for role, env in (
        (roles.ROOT, repo.root),
        (roles.TIMESTAMP, repo.timestamp),
        (roles.SNAPSHOT, repo.snapshot),
        (roles.TARGETS, repo.targets),
        (RELEASES, repo.releases),
    ):
        source.put(GUN, role, env.data, version=env.signed.version)
    trusted = Updater(GUN, source, MemoryCache(), clock=lambda: NOW).refresh()
    assert trusted.resolve("1.0").role == RELEASES
    assert set(trusted.signed_tags()) == {"1.0"}
    assert set(trusted.signed_by(RELEASES)) == {repo.signer.key_id}
    with pytest.raises(RepositoryNotFoundError):
        source.get("example.com/none", roles.ROOT, max_bytes=1024)
    with pytest.raises(MetadataNotFoundError):
        source.get(GUN, roles.ROOT, max_bytes=1024, version=7)
    with pytest.raises(TrustServerError, match="larger than 10 bytes"):
        source.get(GUN, roles.ROOT, max_bytes=10)


def test_clock_is_a_value() -> None:
    assert TrustedSet(GUN, GoTime.parse("2030-01-01T00:00:00Z")).now.format().startswith("2030")


def test_a_delegation_listed_twice_is_walked_once(repo: Repo) -> None:
    """Red-team finding (import): targets listing targets/a twice, targets/a listing targets/a/a twice, ...
    doubled the walk at every level (2**depth file loads). The updater walks each role once."""
    depth = 24
    key = PrivateKey.generate()
    names = ["targets"] + ["targets" + "/a" * n for n in range(1, depth + 1)]
    files: dict[str, Envelope[Targets]] = {}
    for parent, child in reversed(list(itertools.pairwise(names))):
        body = new_targets(now=NOW, role=parent if parent != "targets" else None)
        body.delegations.keys[key.key_id] = key.public_key
        entry = DelegatedRole(child, [key.key_id], 1, [""])
        body.delegations.roles.extend([entry, entry])
        files[parent] = Envelope.sign(body, [repo.targets_key if parent == "targets" else key])
    files[names[-1]] = Envelope.sign(new_targets(now=NOW, role=names[-1]), [key])
    snapshot = repo.sign_snapshot({roles.ROOT: repo.root, **files})  # type: ignore[dict-item]
    timestamp = Envelope.sign(new_timestamp(snapshot, now=NOW), [repo.timestamp_key])
    source = MemorySource()
    for role, env in ((roles.ROOT, repo.root), (roles.TIMESTAMP, timestamp), (roles.SNAPSHOT, snapshot)):
        source.put(GUN, role, env.data, version=env.signed.version)
    for role, env in files.items():
        source.put(GUN, role, env.data, version=env.signed.version)
    fetched: list[str] = []
    real_get = source.get

    def counting_get(gun: str, role: str, **kw: object) -> bytes:
        fetched.append(role)
        return real_get(gun, role, **kw)  # type: ignore[arg-type]

    source.get = counting_get  # type: ignore[method-assign]
    trusted = Updater(GUN, source, MemoryCache(), clock=lambda: NOW).refresh()
    assert len(trusted.targets) == depth + 1
    assert sorted(r for r in fetched if r.startswith("targets")) == sorted(names)
