"""notar.tuf.verify_history: a repository's whole trust data checked from root version 1 (notar import)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from notar.crypto import PrivateKey, make_root_certificate
from notar.encoding import GoTime
from notar.tuf import (
    MAX_ROOT_VERSIONS,
    DelegatedRole,
    Envelope,
    FileMeta,
    HistoryError,
    RepositoryHistory,
    Role,
    Timestamp,
    new_root,
    new_snapshot,
    new_targets,
    verify_history,
)

GUN = "example.com/team/app"
NOW = GoTime.now()


class Builder:
    """Root v1 (key A), v2 rotated to key B, targets with one delegation, snapshot, timestamp."""

    def __init__(self) -> None:
        self.a, self.b = PrivateKey.generate(), PrivateKey.generate()
        self.cert_a = make_root_certificate(self.a, GUN, now=datetime.now(UTC))
        self.cert_b = make_root_certificate(self.b, GUN, now=datetime.now(UTC))
        self.targets_key, self.snap_key, self.ts_key, self.alice = (PrivateKey.generate() for _ in range(4))
        v1 = new_root(
            {
                "root": [self.cert_a],
                "targets": [self.targets_key.public_key],
                "snapshot": [self.snap_key.public_key],
                "timestamp": [self.ts_key.public_key],
            },
            now=NOW,
        )
        self.root1 = Envelope.sign(v1, [(self.a, self.cert_a.key_id)])
        v2 = copy.deepcopy(v1)
        v2.keys = {k: v for k, v in v2.keys.items() if k != self.cert_a.key_id}
        v2.keys[self.cert_b.key_id] = self.cert_b
        v2.roles["root"] = Role([self.cert_b.key_id], 1)
        v2.version = 2
        self.root2 = Envelope.sign(v2, [(self.a, self.cert_a.key_id), (self.b, self.cert_b.key_id)])

    def files(self, *, alice_expired: bool = False) -> RepositoryHistory:
        targets = new_targets(now=NOW)
        targets.targets["1.0"] = FileMeta(401, {"sha256": b"\x01" * 32})
        targets.delegations.keys[self.alice.key_id] = self.alice.public_key
        targets.delegations.roles.append(DelegatedRole("targets/alice", [self.alice.key_id], 1, [""]))
        targets_env = Envelope.sign(targets, [self.targets_key])
        alice = new_targets(now=NOW)
        if alice_expired:
            alice.expires = NOW.add(days=-1)
        alice.targets["2.0"] = FileMeta(402, {"sha256": b"\x02" * 32})
        alice_env = Envelope.sign(alice, [self.alice])
        snap = new_snapshot({}, now=NOW, version=3)
        snap.meta = {
            "root": self.root2.file_meta(),
            "targets": targets_env.file_meta(),
            "targets/alice": alice_env.file_meta(),
        }
        snap_env = Envelope.sign(snap, [self.snap_key])
        ts = Timestamp(
            meta={"snapshot": FileMeta.from_data(snap_env.data)}, version=4, expires=NOW.add(days=14)
        )
        ts_env = Envelope.sign(ts, [self.ts_key])
        return RepositoryHistory(
            GUN,
            (self.root1.data, self.root2.data),
            ts_env.data,
            snap_env.data,
            {"targets": targets_env.data, "targets/alice": alice_env.data},
        )


@pytest.fixture(scope="module")
def built() -> Builder:
    return Builder()


def test_a_good_history_verifies(built: Builder) -> None:
    history = built.files()
    verified = verify_history(history, now=NOW)
    assert verified.root.signed.version == 2
    assert verified.delegations == ["targets/alice"]
    assert not verified.ignored
    assert [(r, v) for r, v, _ in verified.files()] == [
        ("root", 1),
        ("root", 2),
        ("timestamp", 4),
        ("snapshot", 3),
        ("targets", 1),
        ("targets/alice", 1),
    ]
    # the root the client cached is in the history: fine
    verify_history(history, now=NOW, anchor=built.root1.data)


def test_every_rotation_step_is_checked(built: Builder) -> None:
    history = built.files()
    only_b = Envelope.sign(built.root2.signed, [(built.b, built.cert_b.key_id)])  # not signed by A
    with pytest.raises(HistoryError, match="^root version 2: could not rotate"):
        verify_history(
            RepositoryHistory(
                GUN, (built.root1.data, only_b.data), history.timestamp, history.snapshot, history.targets
            ),
            now=NOW,
        )
    with pytest.raises(HistoryError, match="^root version 1: the first root has version 2"):
        verify_history(
            RepositoryHistory(GUN, (built.root2.data,), history.timestamp, history.snapshot, history.targets),
            now=NOW,
        )
    with pytest.raises(HistoryError, match="more than"):
        verify_history(
            RepositoryHistory(GUN, (built.root1.data,) * (MAX_ROOT_VERSIONS + 1), b"", b"", {}), now=NOW
        )
    with pytest.raises(HistoryError, match="^root version 2: "):
        verify_history(history, now=NOW.add(days=365 * 11))


def test_the_cached_root_must_be_in_the_history(built: Builder) -> None:
    history = built.files()
    other = Envelope.sign(
        built.root1.signed, [(built.a, built.cert_a.key_id), (built.b, built.cert_b.key_id)]
    )
    with pytest.raises(HistoryError, match="differs from the root this client trusted"):
        verify_history(history, now=NOW, anchor=other.data)
    newer = copy.deepcopy(built.root2.signed)
    newer.version = 3
    newer_env = Envelope.sign(newer, [(built.b, built.cert_b.key_id)])
    with pytest.raises(HistoryError, match="older than the root this client trusted before"):
        verify_history(history, now=NOW, anchor=newer_env.data)


def test_files_are_bound_to_the_snapshot_and_nothing_extra_is_carried(built: Builder) -> None:
    history = built.files()
    tampered = dict(history.targets, targets=history.targets["targets"].replace(b"1.0", b"1.1"))
    with pytest.raises(HistoryError, match="^targets: "):
        verify_history(
            RepositoryHistory(GUN, history.roots, history.timestamp, history.snapshot, tampered), now=NOW
        )
    missing = {"targets": history.targets["targets"]}
    with pytest.raises(HistoryError, match="^targets/alice: listed in the snapshot but missing"):
        verify_history(
            RepositoryHistory(GUN, history.roots, history.timestamp, history.snapshot, missing), now=NOW
        )
    extra = dict(history.targets, **{"targets/bob": history.targets["targets/alice"]})
    with pytest.raises(HistoryError, match="^targets/bob: not reachable"):
        verify_history(
            RepositoryHistory(GUN, history.roots, history.timestamp, history.snapshot, extra), now=NOW
        )
    with pytest.raises(HistoryError, match="^timestamp: "):
        verify_history(
            RepositoryHistory(GUN, history.roots, history.snapshot, history.snapshot, history.targets),
            now=NOW,
        )
    with pytest.raises(HistoryError, match="^timestamp: .*expired"):
        verify_history(history, now=NOW.add(days=15))


def test_a_delegation_clients_ignore_is_carried_as_it_is(built: Builder) -> None:
    verified = verify_history(built.files(alice_expired=True), now=NOW)
    assert set(verified.ignored) == {"targets/alice"}
    assert "targets/alice" in verified.history.targets
    assert verified.root.signed.version == 2


def test_a_delegation_listed_twice_is_refused(built: Builder) -> None:
    """Red-team finding 1: a delegation listed twice doubled the walk at every level; refused as an upload
    is, and walked once meanwhile."""
    history = built.files()
    targets = Envelope.from_bytes(history.targets["targets"]).signed
    targets.delegations.roles.append(targets.delegations.roles[0])
    signed = Envelope.sign(targets, [built.targets_key])
    snap = Envelope.from_bytes(history.snapshot).signed
    snap.meta["targets"] = FileMeta.from_data(signed.data)
    snap_env = Envelope.sign(snap, [built.snap_key])
    ts = Envelope.from_bytes(history.timestamp).signed
    ts.meta["snapshot"] = FileMeta.from_data(snap_env.data)
    bad = RepositoryHistory(
        GUN,
        history.roots,
        Envelope.sign(ts, [built.ts_key]).data,
        snap_env.data,
        {"targets": signed.data, "targets/alice": history.targets["targets/alice"]},
    )
    with pytest.raises(
        HistoryError, match="^targets: targets lists the delegation targets/alice more than once"
    ):
        verify_history(bad, now=NOW)
