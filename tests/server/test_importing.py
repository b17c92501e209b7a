"""The server side of `notar import` (notar.server.importing) on a real SQLite store: what the import of a
moved repository stores, and the red-team findings it refuses (an update that rolls a role back, files a
normal upload may not carry, a replacement raced by a newer update)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.server.errors import ServerError
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import MetaUpdate, OldVersionError, SQLMetaStore, migrate, open_store
from notar.tuf import DelegatedRole, Envelope, FileMeta, RepositoryHistory, Role, Snapshot, new_snapshot
from tests.tuf.test_history import GUN, NOW, Builder


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TrustService]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    yield TrustService(store, DatabaseKeyService(store, Secret("pw")), clock=lambda: NOW)
    store.close()


def moving_root(built: Builder, service: TrustService) -> Envelope:  # type: ignore[type-arg]
    """Root version 3: root 2 with the server's timestamp key, signed by the root key (B)."""
    ts = service.key(GUN, "timestamp")
    body = copy.deepcopy(built.root2.signed)
    body.keys = {k: v for k, v in body.keys.items() if k != built.ts_key.key_id}
    body.keys[ts.key_id] = ts
    body.roles["timestamp"] = Role([ts.key_id], 1)
    body.version = 3
    return Envelope.sign(body, [(built.b, built.cert_b.key_id)])


def client_snapshot(built: Builder, history: RepositoryHistory, root: Envelope, version: int) -> bytes:  # type: ignore[type-arg]
    previous = Envelope.from_bytes(history.snapshot, expect=Snapshot).signed
    snap = new_snapshot({}, now=NOW, version=version)
    snap.meta = {**previous.meta, "root": root.file_meta()}
    return Envelope.sign(snap, [built.snap_key]).data


def test_an_import_stores_the_history_and_continues_its_versions(service: TrustService) -> None:
    built = Builder()
    history = built.files()
    root = moving_root(built, service)
    update = {"root": root.data, "snapshot": client_snapshot(built, history, root, 4)}
    result = service.import_repository(GUN, history, update)
    assert result.versions == {
        "root": 3,
        "timestamp": 5,
        "snapshot": 4,
        "targets": 1,
        "targets/alice": 1,
    }
    assert service.by_version(GUN, "root", 1).data == built.root1.data
    assert service.current(GUN, "root").data == root.data


def test_an_update_that_rolls_a_role_back_is_refused(service: TrustService) -> None:
    """Red-team finding 3: a client-signed snapshot below the imported one was stored and served."""
    built = Builder()
    history = built.files()
    root = moving_root(built, service)
    update = {"root": root.data, "snapshot": client_snapshot(built, history, root, 2)}
    with pytest.raises(ServerError) as caught:
        service.import_repository(GUN, history, update)
    assert caught.value.code == "INVALID_UPDATE"
    assert "must be above the imported version 3" in str(caught.value.detail)
    assert service.store.get_current(GUN, "root") is None


def test_files_a_normal_upload_may_not_carry_are_refused(service: TrustService) -> None:
    """Red-team finding 4: a delegation key under the wrong ID (Go clients fail hard, notar skipped it)."""
    built = Builder()
    history = built.files()
    targets = Envelope.from_bytes(history.targets["targets"]).signed
    key = targets.delegations.keys.pop(built.alice.key_id)
    targets.delegations.keys["f" * 64] = key
    targets.delegations.roles = [DelegatedRole("targets/alice", ["f" * 64], 1, [""])]
    signed = Envelope.sign(targets, [built.targets_key])
    snap = Envelope.from_bytes(history.snapshot, expect=Snapshot).signed
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
    with pytest.raises(ServerError) as caught:
        service.import_repository(GUN, bad, {"root": moving_root(built, service).data})
    assert caught.value.code == "INVALID_UPDATE"
    assert "key ID is not valid for key content" in str(caught.value.detail)


def test_a_replacement_never_wipes_out_a_newer_update(service: TrustService) -> None:
    """Red-team finding 5: the "newer for every role" rule is checked inside the replacing transaction."""
    store = service.store
    assert isinstance(store, SQLMetaStore)
    store.update_many(GUN, [MetaUpdate("root", 1, b"r1"), MetaUpdate("timestamp", 7, b"t7")])
    with pytest.raises(OldVersionError):
        store.import_many(
            GUN, [MetaUpdate("root", 2, b"r2"), MetaUpdate("timestamp", 7, b"t7'")], replace=True
        )
    assert store.get_current(GUN, "timestamp").data == b"t7"  # type: ignore[union-attr]
    store.import_many(GUN, [MetaUpdate("root", 2, b"r2"), MetaUpdate("timestamp", 8, b"t8")], replace=True)
    assert store.get_current(GUN, "timestamp").data == b"t8"  # type: ignore[union-attr]
