"""notar.server.storage against real databases: SQLite in tmp_path and PostgreSQL from tests/lab.

Every test that takes ``store`` or ``db_url`` runs on both backends. Schemas always come from
``migrate()`` (Alembic); nothing here calls ``create_all``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from notar.server.storage import (
    MAX_CHANGES,
    Change,
    DuplicateKeyError,
    MetaUpdate,
    OldVersionError,
    SchemaError,
    SQLMetaStore,
    StorageError,
    StorageUnavailableError,
    StoredKey,
    _sql,
    current_revision,
    head_revision,
    migrate,
    open_store,
)
from notar.server.storage._models import Base, ChangeRow
from tests.lab import free_port

TS = "timestamp"
GUN = "example.com/lab/repo"


def upd(role: str, version: int, data: bytes | None = None) -> MetaUpdate:
    return MetaUpdate(role, version, data if data is not None else f"{role} v{version}".encode())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def brief(changes: list[Change]) -> list[tuple[str, int, str]]:
    return [(c.gun, c.version, c.category) for c in changes]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.peers)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty, un-migrated database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notar.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SQLMetaStore]:
    """A store on a freshly migrated database."""
    migrate(db_url)
    with open_store(db_url) as s:
        yield s


# --------------------------------------------------------------------------- round trips


def test_round_trip_of_every_getter(store: SQLMetaStore) -> None:
    before = datetime.now(UTC)
    files = [upd("root", 1), upd("targets", 1), upd("targets/releases", 1), upd("snapshot", 1), upd(TS, 1)]
    store.update_many(GUN, files)
    after = datetime.now(UTC)

    for f in files:
        got = store.get_current(GUN, f.role)
        assert got is not None
        assert (got.gun, got.role, got.version, got.data, got.sha256) == (GUN, f.role, 1, f.data, sha(f.data))
        assert got.created_at.tzinfo is UTC
        assert before - timedelta(seconds=1) <= got.created_at <= after + timedelta(seconds=1)
        assert store.get_version(GUN, f.role, 1) == got
        assert store.get_checksum(GUN, f.role, got.sha256) == got
        assert store.get_checksum(GUN, f.role, got.sha256.upper()) == got
        assert f.data.decode() not in repr(got)  # reprs never show contents

    assert store.get_current(GUN, "targets/other") is None
    assert store.get_current("example.com/lab/other", "root") is None
    assert store.get_version(GUN, "root", 2) is None
    assert store.get_checksum(GUN, "root", sha(b"something else")) is None
    assert store.get_checksum(GUN, "targets", sha(files[0].data)) is None  # root's hash, wrong role
    assert store.get_checksum(GUN, "root", "") is None
    assert store.get_checksum(GUN, "root", "not hex") is None
    assert store.get_version(GUN, "root", -1) is None
    assert store.get_version(GUN, "root", 2**40) is None


def test_get_current_is_the_highest_version(store: SQLMetaStore) -> None:
    store.update_many(GUN, [upd("targets", 1)])
    store.update_many(GUN, [upd("targets", 2)])
    store.update_many(GUN, [upd("targets", 7)])
    current = store.get_current(GUN, "targets")
    assert current is not None and current.version == 7
    assert [v for v in range(1, 8) if store.get_version(GUN, "targets", v)] == [1, 2, 7]


def test_get_current_many_is_one_query(store: SQLMetaStore) -> None:
    store.update_many(GUN, [upd("root", 1), upd("targets", 1), upd(TS, 1)])
    store.update_many(GUN, [upd("targets", 2), upd(TS, 2)])
    store.update_many("example.com/lab/other", [upd("snapshot", 9)])

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        got = store.get_current_many(GUN, ["targets", "root", "snapshot", "targets", TS])
    finally:
        event.remove(store.engine, "before_cursor_execute", record)

    assert set(got) == {"root", "targets", TS}
    assert {role: m.version for role, m in got.items()} == {"root": 1, "targets": 2, TS: 2}
    assert got["targets"] == store.get_current(GUN, "targets")
    assert len([s for s in statements if "tuf_files" in s]) == 1
    assert store.get_current_many(GUN, []) == {}
    assert store.get_current_many("example.com/none", ["root"]) == {}


# --------------------------------------------------------------------------- version rules


@pytest.mark.parametrize("bad", [1, 3])  # older than stored, equal to stored
def test_old_or_equal_version_is_refused_and_nothing_is_written(store: SQLMetaStore, bad: int) -> None:
    store.update_many(GUN, [upd("root", 1), upd("targets", 3), upd("snapshot", 1), upd(TS, 1)])
    feed = store.get_changes(0, 100)

    with pytest.raises(OldVersionError) as err:
        # every other role is fine: the whole batch must still be refused
        store.update_many(
            GUN, [upd("root", 2), upd("targets", bad, b"stale"), upd("snapshot", 2), upd(TS, 2)]
        )
    assert (err.value.role, err.value.version) == ("targets", bad)
    assert "targets" in str(err.value)

    for role, version in (("root", 1), ("targets", 3), ("snapshot", 1), (TS, 1)):
        current = store.get_current(GUN, role)
        assert current is not None and current.version == version, role
    assert store.get_version(GUN, "root", 2) is None
    assert store.get_changes(0, 100) == feed

    store.update_many(GUN, [upd("targets", 4)])  # a newer one is fine


def test_lowest_version_of_a_role_must_be_new(store: SQLMetaStore) -> None:
    store.update_many(GUN, [upd("targets", 3)])
    with pytest.raises(OldVersionError):
        store.update_many(GUN, [upd("targets", 5), upd("targets", 3)])
    assert store.get_version(GUN, "targets", 5) is None

    store.update_many(GUN, [upd("targets", 6), upd("targets", 4)])  # order in the batch does not matter
    assert [v for v in range(1, 7) if store.get_version(GUN, "targets", v)] == [3, 4, 6]


def test_duplicate_role_version_in_one_batch_is_refused(store: SQLMetaStore) -> None:
    with pytest.raises(OldVersionError) as err:
        store.update_many(GUN, [upd("root", 1), upd("targets", 2, b"a"), upd("targets", 2, b"b"), upd(TS, 1)])
    assert (err.value.role, err.value.version) == ("targets", 2)
    assert store.get_current_many(GUN, ["root", "targets", TS]) == {}
    assert store.get_changes(0, 100) == []


def test_versions_are_per_gun_and_role(store: SQLMetaStore) -> None:
    store.update_many(GUN, [upd("targets", 5)])
    store.update_many(GUN, [upd("root", 1), upd("targets/releases", 1)])
    store.update_many(GUN + "2", [upd("targets", 1)])
    store.update_many(GUN.upper(), [upd("targets", 1)])  # GUNs are case-sensitive, like notary's
    assert store.get_current(GUN + "2", "targets") is not None


def test_unique_index_race_becomes_old_version_error(
    store: SQLMetaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a concurrent writer takes: our check passed, the database's unique index refuses."""
    store.update_many(GUN, [upd("targets", 1), upd(TS, 1)])
    feed = store.get_changes(0, 100)
    monkeypatch.setattr(_sql, "_check_versions", lambda *args: None)

    with pytest.raises(OldVersionError) as err:
        store.update_many(GUN, [upd("targets", 1, b"other"), upd(TS, 2)])
    assert type(err.value.__cause__).__name__ == "IntegrityError"
    current = store.get_current(GUN, TS)
    assert current is not None and current.version == 1  # the timestamp of the failed batch is gone
    target = store.get_current(GUN, "targets")
    assert target is not None and target.data == b"targets v1"
    assert store.get_changes(0, 100) == feed


def test_changefeed_row_is_written_in_the_same_transaction(
    store: SQLMetaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_row = _sql._change_row

    def broken_row(gun: str, version: int, sha256: str | None, category: str, now: datetime) -> ChangeRow:
        return real_row(gun, version, sha256, "bogus", now)  # violates the category CHECK constraint

    monkeypatch.setattr(_sql, "_change_row", broken_row)
    with pytest.raises(StorageError) as err:
        store.update_many(GUN, [upd("root", 1), upd("targets", 1), upd(TS, 1)])
    assert not isinstance(err.value, OldVersionError)  # a constraint other than the unique index
    assert store.get_current_many(GUN, ["root", "targets", TS]) == {}

    monkeypatch.undo()
    store.update_many(GUN, [upd("root", 1), upd(TS, 1)])
    monkeypatch.setattr(_sql, "_change_row", broken_row)
    with pytest.raises(StorageError):
        store.delete(GUN)
    assert store.get_current(GUN, "root") is not None  # the delete was rolled back with its feed row


def test_changefeed_rows_for_timestamps_only(store: SQLMetaStore) -> None:
    ts1, ts2 = b"timestamp one", b"timestamp two"
    store.update_many(GUN, [upd("root", 1), upd("targets", 1), upd("snapshot", 1), upd(TS, 1, ts1)])
    store.update_many(GUN, [upd("targets", 2), upd("snapshot", 2)])  # no timestamp: no change row
    store.update_many(GUN, [upd(TS, 2, ts2)])

    changes = store.get_changes(0, 100)
    assert [(c.gun, c.version, c.sha256, c.category) for c in changes] == [
        (GUN, 1, sha(ts1), "update"),
        (GUN, 2, sha(ts2), "update"),
    ]
    assert changes[0].id < changes[1].id
    stored = store.get_version(GUN, TS, 1)
    assert stored is not None and changes[0].created_at == stored.created_at  # same transaction, same time
    assert all(c.created_at.tzinfo is UTC for c in changes)


def test_invalid_input_is_a_storage_error(store: SQLMetaStore) -> None:
    store.update_many(GUN, [])  # nothing to do
    with pytest.raises(StorageError):
        store.update_many("g" * 256, [upd(TS, 1)])
    with pytest.raises(StorageError):
        store.update_many("", [upd(TS, 1)])
    with pytest.raises(StorageError):
        store.update_many(GUN, [upd("r" * 256, 1)])
    with pytest.raises(StorageError):
        store.update_many(GUN, [upd("targets", -1)])
    with pytest.raises(StorageError):
        store.update_many(GUN, [upd("targets", 2**31)])
    assert store.get_changes(0, 100) == []
    assert store.get_current(GUN, "targets") is None


# --------------------------------------------------------------------------- delete


def test_delete_removes_exactly_one_gun(store: SQLMetaStore) -> None:
    guns = ["a/b", "a/bc", "a/b/c", "a", "A/B", "a_b", "axb", "a%", "ab"]
    for g in guns:
        store.update_many(g, [upd("root", 1), upd("targets", 1), upd(TS, 1)])
        store.add_key(StoredKey(g, TS, "k" * 64, "ecdsa", b"pub", b"priv", datetime.now(UTC)))
    feed = store.get_changes(-1, 1)[0].id

    assert store.delete("a/b") is True
    assert store.get_current_many("a/b", ["root", "targets", TS]) == {}
    assert store.get_keys("a/b", TS) == []
    assert store.delete("a_b") is True  # no LIKE: "_" and "%" are plain characters
    assert store.delete("a%") is True
    for g in ("a/bc", "a/b/c", "a", "A/B", "axb", "ab"):
        assert set(store.get_current_many(g, ["root", "targets", TS])) == {"root", "targets", TS}, g
        assert len(store.get_keys(g, TS)) == 1, g

    deletions = store.get_changes(feed, 100)
    assert brief(deletions) == [("a/b", 0, "deletion"), ("a_b", 0, "deletion"), ("a%", 0, "deletion")]
    assert all(c.sha256 == "" for c in deletions)

    assert store.delete("a/b") is False  # nothing left: no second deletion row
    assert store.delete("never/existed") is False
    assert len(store.get_changes(feed, 100)) == 3

    store.update_many("a/b", [upd("root", 1), upd(TS, 1)])  # a deleted GUN starts again from version 1
    assert brief(store.get_changes(-1, 1)) == [("a/b", 1, "update")]


def test_delete_of_keys_only_writes_no_deletion_row(store: SQLMetaStore) -> None:
    store.add_key(StoredKey(GUN, TS, "k" * 64, "ecdsa", b"pub", b"priv", datetime.now(UTC)))
    assert store.delete(GUN) is True
    assert store.get_keys(GUN, TS) == []
    assert store.get_changes(0, 100) == []


# --------------------------------------------------------------------------- changefeed paging


def _build_feed(store: SQLMetaStore) -> list[Change]:
    store.update_many("g1", [upd("root", 1), upd(TS, 1)])  # 0: g1 v1
    store.update_many("g2", [upd("root", 1), upd(TS, 1)])  # 1: g2 v1
    store.update_many("g1", [upd("targets", 2), upd(TS, 2)])  # 2: g1 v2
    store.update_many("g1", [upd("targets", 3)])  # (no timestamp, no row)
    store.update_many("g2", [upd(TS, 2)])  # 3: g2 v2
    store.delete("g2")  # 4: g2 deletion
    store.update_many("g1", [upd(TS, 3)])  # 5: g1 v3
    store.update_many("g3", [upd(TS, 1)])  # 6: g3 v1
    feed = store.get_changes(0, 100)
    assert brief(feed) == [
        ("g1", 1, "update"),
        ("g2", 1, "update"),
        ("g1", 2, "update"),
        ("g2", 2, "update"),
        ("g2", 0, "deletion"),
        ("g1", 3, "update"),
        ("g3", 1, "update"),
    ]
    assert [c.id for c in feed] == sorted({c.id for c in feed})
    return feed


def test_get_changes_paging(store: SQLMetaStore) -> None:
    feed = _build_feed(store)
    ids = [c.id for c in feed]

    # forwards: after change_id (exclusive), oldest first; 0 = from the beginning
    assert store.get_changes(0, 2) == feed[0:2]
    assert store.get_changes(ids[1], 2) == feed[2:4]
    assert store.get_changes(ids[5], 5) == feed[6:]
    assert store.get_changes(ids[6], 5) == []
    assert store.get_changes(0, 0) == feed  # 0 records = the default page (100)
    # backwards: the |records| changes before change_id, still oldest first
    assert store.get_changes(ids[4], -2) == feed[2:4]
    assert store.get_changes(ids[1], -5) == feed[0:1]
    assert store.get_changes(ids[0], -5) == []
    assert store.get_changes(ids[6] + 100, -2) == feed[5:7]
    # a negative change_id starts at the newest, whatever the sign of records
    assert store.get_changes(-1, 3) == feed[4:7]
    assert store.get_changes(-1, -3) == feed[4:7]
    assert store.get_changes(-1, 0) == feed
    # notary quirk: change_id 0 with negative records also counts back from the newest
    assert store.get_changes(0, -2) == feed[5:7]
    # per-GUN feed
    assert store.get_changes(0, 100, "g2") == [feed[1], feed[3], feed[4]]
    assert store.get_changes(ids[0], 1, "g1") == [feed[2]]
    assert store.get_changes(-1, 2, "g1") == [feed[2], feed[5]]
    assert store.get_changes(ids[5], -1, "g1") == [feed[2]]
    assert store.get_changes(0, 100, "") == feed  # "" = no filter (notary's empty filter)
    assert store.get_changes(0, 100, "g") == []  # exact GUN, not a prefix
    # hashes and categories
    g1v1 = store.get_version("g1", TS, 1)
    assert g1v1 is not None and feed[0].sha256 == g1v1.sha256
    assert feed[4].sha256 == ""


def _reference(feed: list[Change], change_id: int, records: int, gun: str | None) -> list[Change]:
    """The paging rules, written out independently of the SQL."""
    rows = [c for c in feed if not gun or c.gun == gun]
    if records == 0:
        records = 100
    if change_id < 0 or records < 0:
        before = [c for c in rows if change_id <= 0 or c.id < change_id]
        return before[len(before) - min(abs(records), len(before)) :]
    return [c for c in rows if c.id > change_id][:records]


def test_get_changes_matches_the_reference_rules(store: SQLMetaStore) -> None:
    feed = _build_feed(store)
    ids = [c.id for c in feed]
    for change_id in (-7, -1, 0, *ids, ids[-1] + 1):
        for records in range(-9, 10):
            for gun in (None, "g1", "g2", "g3"):
                want = _reference(feed, change_id, records, gun)
                assert store.get_changes(change_id, records, gun) == want, (change_id, records, gun)


def test_get_changes_is_capped(store: SQLMetaStore) -> None:
    store.update_many(GUN, [upd(TS, v, b"%d" % v) for v in range(1, MAX_CHANGES + 6)])
    forwards = store.get_changes(0, 5000)
    assert [c.version for c in forwards] == list(range(1, MAX_CHANGES + 1))
    backwards = store.get_changes(-1, -5000)
    assert [c.version for c in backwards] == list(range(6, MAX_CHANGES + 6))
    assert len(store.get_changes(0, 0)) == 100


# --------------------------------------------------------------------------- keys


def test_keys_round_trip_newest_first(store: SQLMetaStore) -> None:
    t0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    old = StoredKey(GUN, TS, "a" * 64, "ecdsa", b"public-1", b"\x00sealed-1\xff", t0)
    new = StoredKey(GUN, TS, "b" * 64, "ed25519", b"public-2", b"sealed-2", t0 + timedelta(hours=1))
    snap = StoredKey(GUN, "snapshot", "a" * 64, "ecdsa", b"public-3", b"sealed-3", t0)  # same ID, other role
    other = StoredKey(GUN + "2", TS, "c" * 64, "ecdsa", b"public-4", b"sealed-4", t0)
    for key in (old, new, snap, other):
        store.add_key(key)

    assert store.get_keys(GUN, TS) == [new, old]
    assert store.get_keys(GUN, "snapshot") == [snap]
    assert store.get_keys(GUN + "2", TS) == [other]
    assert store.get_keys(GUN, "targets") == []
    assert all(k.created_at.tzinfo is UTC for k in store.get_keys(GUN, TS))
    assert "sealed" not in repr(old)

    with pytest.raises(DuplicateKeyError):
        store.add_key(StoredKey(GUN, TS, "a" * 64, "ecdsa", b"x", b"y", t0 + timedelta(days=1)))
    assert store.get_keys(GUN, TS) == [new, old]


def test_key_times_are_stored_as_utc(store: SQLMetaStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 12, 0, 0, tzinfo=plus_two)
    store.add_key(StoredKey(GUN, TS, "a" * 64, "ecdsa", b"p", b"s", local))
    (got,) = store.get_keys(GUN, TS)
    assert got.created_at == local
    assert got.created_at.tzinfo is UTC and got.created_at.hour == 10
    with pytest.raises(ValueError, match="aware"):
        store.add_key(StoredKey(GUN, TS, "b" * 64, "ecdsa", b"p", b"s", datetime(2026, 6, 1)))


# --------------------------------------------------------------------------- repositories


def test_list_repositories(store: SQLMetaStore) -> None:
    store.update_many("example.com/Lib/alpine", [upd("root", 1), upd(TS, 1)])
    store.update_many("example.com/lib/busybox", [upd("root", 1), upd(TS, 1)])
    store.update_many("example.com/lib/busybox", [upd(TS, 2)])
    store.update_many("example.com/lib/busybox", [upd(TS, 3)])
    store.update_many("example.com/other/x_y", [upd(TS, 1)])
    store.update_many("example.com/other/xay", [upd(TS, 1)])
    store.update_many("example.com/no/timestamp", [upd("root", 1)])  # no timestamp: not a repository yet

    repos = store.list_repositories()
    assert [r.gun for r in repos] == [
        "example.com/Lib/alpine",
        "example.com/lib/busybox",
        "example.com/other/x_y",
        "example.com/other/xay",
    ]
    busybox = repos[1]
    latest = store.get_current("example.com/lib/busybox", TS)
    assert latest is not None
    assert busybox.timestamp_version == 3
    assert busybox.updated_at == latest.created_at and busybox.updated_at.tzinfo is UTC

    assert [r.gun for r in store.list_repositories("LIB")] == [
        "example.com/Lib/alpine",
        "example.com/lib/busybox",
    ]
    assert [r.gun for r in store.list_repositories("x_y")] == ["example.com/other/x_y"]  # "_" is literal
    assert store.list_repositories("%") == []
    assert store.list_repositories("\x00") == store.list_repositories("lib\n") == []  # no 500 on PostgreSQL
    assert store.list_repositories("nothing") == []
    assert [r.gun for r in store.list_repositories(limit=2)] == [r.gun for r in repos[:2]]
    assert store.list_repositories(limit=0) == []

    store.delete("example.com/lib/busybox")
    assert [r.gun for r in store.list_repositories("lib")] == ["example.com/Lib/alpine"]


# --------------------------------------------------------------------------- concurrency


def test_concurrent_updates_of_one_gun_serialise(store: SQLMetaStore) -> None:
    """20 threads race to store "targets vN + timestamp vK+1" on the same GUN, as the server does.

    Each attempt picks the next timestamp version after what it read, and a targets version 1-3 above
    the one it read (so rival batches usually do *not* collide on targets, only on the timestamp).
    """
    store.update_many(
        GUN, [upd("root", 1), upd("targets", 1, b"targets init"), upd(TS, 1, b"timestamp init")]
    )
    threads, rounds = 20, 3
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    attempts: list[tuple[str, int, int, bool]] = []  # (token, timestamp version, targets version, stored?)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for r in range(rounds):
                ts, tg = store.get_current(GUN, TS), store.get_current(GUN, "targets")
                assert ts is not None and tg is not None
                if r == 0:
                    barrier.wait(timeout=60)  # everyone read timestamp v1: exactly one may store v2
                token = f"{i}.{r}"
                ts_v, tg_v = ts.version + 1, tg.version + 1 + i % 3
                batch = [
                    upd("targets", tg_v, f"targets {token}".encode()),
                    upd(TS, ts_v, f"timestamp {token}".encode()),
                ]
                try:
                    store.update_many(GUN, batch)
                    stored = True
                except OldVersionError:
                    stored = False
                with lock:
                    attempts.append((token, ts_v, tg_v, stored))
        except BaseException as e:
            with lock:
                errors.append(e)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=240)
    assert not any(w.is_alive() for w in workers)
    assert errors == []  # only OldVersionError, never anything else (no deadlock, no "database is locked")
    assert len(attempts) == threads * rounds

    round0 = [a for a in attempts if a[0].endswith(".0")]
    assert {a[1] for a in round0} == {2}
    assert sum(a[3] for a in round0) == 1

    wins = [a for a in attempts if a[3]]
    won = [a[1] for a in wins]
    assert len(won) == len(set(won))  # one batch per timestamp version
    assert {a[1] for a in attempts if not a[3]} <= set(won)  # every loser lost to a winner of its version

    # No gaps: timestamps 1..N, one per stored batch.
    current = store.get_current(GUN, TS)
    assert current is not None and current.version == 1 + len(wins)
    stamps = [store.get_version(GUN, TS, v) for v in range(1, current.version + 1)]
    assert all(stamps)
    # No torn batch: each timestamp has the targets row written with it, and targets grow with it.
    by_token = {a[0]: a for a in wins}
    previous_targets = 1
    for version, stamp in enumerate(stamps[1:], start=2):
        assert stamp is not None
        token = stamp.data.decode().removeprefix("timestamp ")
        _, ts_v, tg_v, _ = by_token[token]
        assert ts_v == version
        target = store.get_version(GUN, "targets", tg_v)
        assert target is not None and target.data == f"targets {token}".encode()
        assert tg_v > previous_targets
        previous_targets = tg_v
    newest_targets = store.get_current(GUN, "targets")
    assert newest_targets is not None and newest_targets.version == previous_targets
    stored_targets = [v for v in range(1, previous_targets + 1) if store.get_version(GUN, "targets", v)]
    assert len(stored_targets) == 1 + len(wins)  # nothing from a losing batch

    # The changefeed has one row per stored timestamp, in commit (= version) order.
    changes = store.get_changes(0, MAX_CHANGES, GUN)
    assert [c.version for c in changes] == list(range(1, current.version + 1))
    assert [c.sha256 for c in changes] == [s.sha256 for s in stamps if s is not None]


# --------------------------------------------------------------------------- migrations and errors


def test_migrate_fresh_then_again(db_url: str) -> None:
    assert current_revision(db_url) is None
    migrate(db_url)
    assert current_revision(db_url) == head_revision()
    migrate(db_url)  # idempotent
    assert current_revision(db_url) == head_revision()
    with open_store(db_url) as store:
        store.check_health()
        store.update_many(GUN, [upd(TS, 1)])
    migrate(db_url)  # and harmless on a database with data
    with open_store(db_url) as store:
        assert store.get_current(GUN, TS) is not None


def test_concurrent_migrations_take_turns(db_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: migrate(db_url), range(4)))
    assert current_revision(db_url) == head_revision()


def test_unmigrated_database_is_refused(db_url: str) -> None:
    with pytest.raises(SchemaError, match=r"never migrated.*run the database migrations") as err:
        open_store(db_url)
    assert isinstance(err.value, StorageError)
    with SQLMetaStore(db_url, verify_schema=False) as store, pytest.raises(StorageUnavailableError):
        store.check_health()  # no tables


def test_newer_database_is_refused(db_url: str) -> None:
    migrate(db_url)
    with SQLMetaStore(db_url, verify_schema=False) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaError, match="newer than this notar knows"):
        open_store(db_url)
    with pytest.raises(SchemaError, match="newer than this notar knows"):
        migrate(db_url)
    assert current_revision(db_url) == "9999_from_the_future"  # left alone


def test_models_match_migrations(store: SQLMetaStore) -> None:
    """Alembic autogenerate finds nothing to change: the ORM models and the migrations describe one schema."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unreachable_database_is_unavailable(backend: str, tmp_path: Any) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'notar.db'}"
    else:  # a port nobody listens on
        url = f"postgresql://notar:secret-pw@127.0.0.1:{free_port()}/notar?connect_timeout=3"
    with pytest.raises(StorageUnavailableError) as err:
        open_store(url)
    assert "secret-pw" not in str(err.value)
    with pytest.raises(StorageUnavailableError):
        migrate(url)
    with SQLMetaStore(url, verify_schema=False) as store:
        with pytest.raises(StorageUnavailableError):
            store.check_health()
        with pytest.raises(StorageUnavailableError):
            store.get_current(GUN, TS)
        with pytest.raises(StorageUnavailableError):
            store.update_many(GUN, [upd(TS, 1)])


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@127.0.0.1/notar",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg2://u@127.0.0.1/notar",
        "not a url",
    ],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StorageError):
        open_store(url)
    with pytest.raises(StorageError):
        migrate(url)


@pytest.mark.peers
def test_postgres_scheme_alias(postgres_database: str) -> None:
    alias = postgres_database.replace("postgresql://", "postgres://", 1)
    migrate(alias)
    with open_store(alias) as store:
        assert store.engine.dialect.driver == "psycopg"
        store.update_many(GUN, [upd(TS, 1)])
    with open_store(postgres_database) as store:
        assert store.get_current(GUN, TS) is not None


def test_data_never_reaches_logs_or_messages(
    store: SQLMetaStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)  # also turns on SQLAlchemy's statement log
    secret = b"TOP-SECRET-METADATA-4f1c"
    store.update_many(GUN, [upd("targets", 1, secret), upd(TS, 1, secret + b"-ts")])
    with pytest.raises(OldVersionError) as checked:
        store.update_many(GUN, [upd("targets", 1, secret)])
    monkeypatch.setattr(_sql, "_check_versions", lambda *args: None)
    with pytest.raises(OldVersionError) as raced:
        store.update_many(GUN, [upd("targets", 1, secret + b"-2")])

    texts = [
        caplog.text,
        str(checked.value),
        str(raced.value),
        str(raced.value.__cause__),
        repr(store.get_current(GUN, "targets")),
    ]
    assert caplog.text  # something was logged, so the check means something
    for t in texts:
        assert "TOP-SECRET" not in t
        assert secret.hex() not in t


# --------------------------------------------------------------------------- import_many (notar import)


def test_import_many_stores_a_whole_history_in_one_transaction(store: SQLMetaStore) -> None:
    files = [
        upd("root", 1),
        upd("root", 2),
        upd("root", 3),
        upd("targets", 7),
        upd("snapshot", 9),
        upd(TS, 9),
    ]
    files += [upd("snapshot", 10), upd(TS, 10)]
    store.import_many(GUN, files)
    for role, version in (("root", 3), ("targets", 7), ("snapshot", 10), (TS, 10)):
        got = store.get_current(GUN, role)
        assert got is not None and got.version == version, role
    assert [store.get_version(GUN, "root", v) is not None for v in (1, 2, 3)] == [True, True, True]
    assert [c.version for c in store.get_changes(0, 100, GUN)] == [9, 10]


def test_import_many_refuses_an_existing_gun_unless_replacing(store: SQLMetaStore) -> None:
    from notar.server.storage import RepositoryExistsError

    store.update_many(GUN, [upd("root", 1), upd("targets", 1), upd(TS, 1)])
    key = StoredKey(GUN, TS, "k" * 64, "ecdsa", b"pub", b"priv", datetime.now(UTC))
    store.add_key(key)
    with pytest.raises(RepositoryExistsError):
        store.import_many(GUN, [upd("root", 1, b"other"), upd(TS, 5)])
    assert store.get_current(GUN, "root").data == b"root v1"  # type: ignore[union-attr]

    store.import_many(GUN, [upd("root", 1, b"other"), upd("root", 2), upd(TS, 5)], replace=True)
    assert store.get_current(GUN, "root").version == 2  # type: ignore[union-attr]
    assert store.get_version(GUN, "root", 1).data == b"other"  # type: ignore[union-attr]
    assert store.get_current(GUN, "targets") is None  # the old files are gone ...
    assert [k.key_id for k in store.get_keys(GUN, TS)] == ["k" * 64]  # ... the server keys stay
    assert brief(store.get_changes(0, 100, GUN))[-2:] == [(GUN, 0, "deletion"), (GUN, 5, "update")]


def test_import_many_is_all_or_nothing(store: SQLMetaStore) -> None:
    with pytest.raises(OldVersionError):
        store.import_many(GUN, [upd("root", 1), upd("root", 1)])
    with pytest.raises(StorageError):
        store.import_many(GUN, [upd("root", 1), upd("targets", 2**40)])
    assert store.get_current(GUN, "root") is None
