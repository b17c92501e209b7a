"""GET of current metadata from the per-process answer cache (notar.server.app): never stale, same answers.

Two apps on one database stand for two server processes (each has its own store, probe and cache): what
one publishes or deletes, the other serves on the very next request, on SQLite (the probe's
``PRAGMA data_version`` and token query) and on PostgreSQL (the batched async probe). Kept answers are
byte-for-byte what the store path answers, expired timestamps/snapshots are re-signed rather than served
from the cache, and a failing probe falls back to reading through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from notar.crypto import PublicKey
from notar.encoding import GoTime
from notar.server.app import NotaryApp, ServerSettings, _Answer, _AnswerCache, create_app
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import (
    BY_HASH,
    BY_VERSION,
    CURRENT,
    MetaUpdate,
    RowKey,
    SQLMetaStore,
    StorageUnavailableError,
    migrate,
    open_store,
)
from notar.server.storage._probe import PostgresProbe, SQLiteProbe
from notar.tuf import Envelope, Snapshot, Targets, Timestamp
from tests.server.tuf_builders import Repo, multipart

GUN = "example.com/team/cached"
TUF = f"/v2/{GUN}/_trust/tuf/"
ROLES = ("root", "targets", "snapshot", "timestamp")
G0: RowKey = (CURRENT, "g0", "targets", None)


class Clock:
    def __init__(self) -> None:
        self.offset_days = 0

    def __call__(self) -> GoTime:
        return GoTime.now().add(days=self.offset_days)


class Server:
    """One app (one "process") on a database: its store, service and a TestClient."""

    def __init__(self, url: str, clock: Clock | None = None, **settings: int) -> None:
        self.store = open_store(url)
        keys = DatabaseKeyService(self.store, Secret("pw"))
        self.service = TrustService(self.store, keys, clock=clock or GoTime.now)
        self.app: NotaryApp = create_app(ServerSettings(**settings), service=self.service)
        self.client = TestClient(self.app)

    def close(self) -> None:
        self.client.close()
        self.store.close()

    def key(self, role: str) -> PublicKey:
        r = self.client.get(TUF + f"{role}.key")
        assert r.status_code == 200, r.text
        return PublicKey.from_dict(r.json())

    def publish(self, files: dict[str, bytes]) -> None:
        body, ctype = multipart(files)
        r = self.client.post(TUF, content=body, headers={"Content-Type": ctype})
        assert r.status_code == 200, r.text

    def version(self, role: str) -> int:
        r = self.client.get(TUF + f"{role}.json")
        assert r.status_code == 200, r.text
        expect = {"timestamp": Timestamp, "snapshot": Snapshot, "targets": Targets}[role]
        return Envelope.from_bytes(r.content, expect=expect).signed.version  # type: ignore[attr-defined, no-any-return]

    def kept(self) -> set[tuple[str, str]]:
        """(gun, role) of the current files this app keeps answers for."""
        return {(k[1], k[2]) for k in self.app._answers._data if k[0] == CURRENT}

    def kept_keys(self) -> set[RowKey]:
        return set(self.app._answers._data)


@contextlib.contextmanager
def servers(url: str, count: int = 2, clock: Clock | None = None) -> Iterator[list[Server]]:
    migrate(url)
    started = [Server(url, clock) for _ in range(count)]
    try:
        for s in started:
            s.client.__enter__()  # one event loop per app for the whole test (as in a server process)
        yield started
    finally:
        for s in started:
            s.client.__exit__(None, None, None)
            s.close()


def first_publish(server: Server) -> Repo:
    repo = Repo(GUN, timestamp_key=server.key("timestamp"), snapshot_key=server.key("snapshot"))
    server.publish(repo.first_publish("v1"))
    return repo


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'notar.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.peers)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notar.db'}"
    return str(request.getfixturevalue("postgres_database"))


def without_date(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() != "date"]


def test_publish_and_delete_through_another_process_are_seen_at_once(database_url: str) -> None:
    with servers(database_url) as (a, b):
        repo = first_publish(b)
        assert [a.version(r) for r in ("targets", "snapshot", "timestamp")] == [1, 1, 1]
        assert a.kept() == {(GUN, "targets"), (GUN, "snapshot"), (GUN, "timestamp")}
        # files by version and by hash, kept too
        assert repo.root is not None
        root_hash = hashlib.sha256(repo.root.data).hexdigest()
        for path in ("1.root.json", f"root.{root_hash}.json", f"root.{root_hash.upper()}.json"):
            for _ in range(2):
                assert a.client.get(TUF + path).content == repo.root.data
        assert {(BY_VERSION, GUN, "root", 1), (BY_HASH, GUN, "root", root_hash)} <= a.kept_keys()
        for version in range(2, 12):
            assert repo.targets is not None
            b.publish({"targets": repo.sign_targets(f"v{version}", version=version).data})
            # the very next request through A, whose cache holds the previous version of all three
            assert a.version("targets") == version
            assert a.version("snapshot") == version
            assert a.version("timestamp") == version
            assert a.version("targets") == version  # and kept again
        assert (GUN, "targets") in a.kept()
        b.client.delete(TUF)
        for role in ROLES:
            assert a.client.get(TUF + f"{role}.json").status_code == 404
        assert a.client.get(TUF + "1.root.json").status_code == 404
        assert a.client.get(TUF + f"root.{root_hash}.json").status_code == 404
        assert not a.kept_keys()
        # re-created with the same versions: new bytes, never the ones kept before the deletion
        assert a.client.get(TUF + "1.root.json").status_code == 404  # (nothing kept for a 404)
        repo2 = first_publish(b)
        assert repo2.root is not None and repo2.root.data != repo.root.data
        assert a.client.get(TUF + "root.json").content == repo2.root.data
        assert a.client.get(TUF + "1.root.json").content == repo2.root.data
        assert a.client.get(TUF + f"root.{root_hash}.json").status_code == 404
        assert a.version("targets") == 1


def test_kept_answers_are_the_store_path_answers(sqlite_url: str) -> None:
    migrate(sqlite_url)
    cached, uncached = Server(sqlite_url), Server(sqlite_url, answer_cache_bytes=0)
    try:
        first_publish(cached)
        ts = Envelope.from_bytes(cached.client.get(TUF + "timestamp.json").content, expect=Timestamp)
        snap_hash = ts.signed.meta["snapshot"].sha256_hex()
        paths = [TUF + f"{r}.json" for r in ROLES]
        paths += [TUF + "1.root.json", TUF + f"snapshot.{snap_hash}.json", TUF + "targets/nope.json"]
        paths += [
            TUF + "2.targets.json",
            "/v2/bad..gun/_trust/tuf/root.json",
            TUF + "root." + "a" * 128 + ".json",
        ]
        paths += [TUF + f"snapshot.{snap_hash.upper()}.json", TUF + "99999999999.root.json"]
        for path in paths:
            want = uncached.client.get(path)
            for _ in range(3):  # the first answer is made, the next ones are kept ones
                got = cached.client.get(path)
                assert (got.status_code, got.content) == (want.status_code, want.content), path
                assert without_date(got.headers.multi_items()) == without_date(want.headers.multi_items())
        assert cached.kept() == {(GUN, r) for r in ROLES}
        assert {(BY_VERSION, GUN, "root", 1), (BY_HASH, GUN, "snapshot", snap_hash)} <= cached.kept_keys()
        assert not uncached.kept_keys()
    finally:
        cached.close()
        uncached.close()


def test_conditional_requests_get_the_whole_file(sqlite_url: str) -> None:
    """As from notary-server: no ETag, and If-None-Match / If-Modified-Since never turn into a 304 (the
    Go and docker clients send neither; a 304 from a cache with 1-second Last-Modified could hide a
    timestamp re-signed within the same second)."""
    with servers(sqlite_url, count=1) as (server,):
        first_publish(server)
        for _ in range(2):
            plain = server.client.get(TUF + "timestamp.json")
            for headers in (
                {"If-None-Match": "*"},
                {"If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"},
                {"If-Modified-Since": plain.headers["last-modified"]},
            ):
                r = server.client.get(TUF + "timestamp.json", headers=headers)
                assert r.status_code == 200 and r.content == plain.content
                assert "etag" not in r.headers


def test_expired_timestamp_and_snapshot_are_resigned_not_served_from_cache(sqlite_url: str) -> None:
    clock = Clock()
    with servers(sqlite_url, count=2, clock=clock) as (a, b):
        first_publish(a)
        assert a.version("timestamp") == 1 and a.version("timestamp") == 1  # the second one is kept
        assert b.version("snapshot") == 1 and b.version("timestamp") == 1
        clock.offset_days = 15  # the timestamp (14 days) expired: both caches hold it
        assert a.version("timestamp") == 2
        assert b.version("timestamp") == 2  # re-signed by A, seen by B
        assert a.version("timestamp") == 2 and b.version("snapshot") == 1
        clock.offset_days = 3 * 365 + 30  # the snapshot (3 years) expired too
        assert b.version("snapshot") == 2
        assert a.version("timestamp") == 3 and a.version("snapshot") == 2


def test_a_failing_probe_falls_back_to_the_store(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with servers(sqlite_url) as (a, b):
        repo = first_publish(b)
        assert a.version("targets") == 1
        probe = a.service.probe
        assert probe is not None

        def unavailable(*_: object) -> int:
            raise StorageUnavailableError("probe down")

        monkeypatch.setattr(probe, "generation", unavailable)
        assert repo.targets is not None
        b.publish({"targets": repo.sign_targets("v2", version=2).data})
        assert a.version("targets") == 2
        assert a.version("timestamp") == 2
        monkeypatch.undo()
        assert a.version("targets") == 2


def test_store_without_probe_reads_every_time(sqlite_url: str) -> None:
    with servers(sqlite_url, count=1) as (server,):
        server.service.probe = None
        first_publish(server)
        assert server.version("targets") == 1 and server.version("targets") == 1
        assert not server.kept()


def test_answer_cache_bounds() -> None:
    cache = _AnswerCache(max_bytes=1000, max_files=3)

    def key(name: str) -> RowKey:
        return (CURRENT, "g", name, None)

    def answer(size: int) -> _Answer:
        return _Answer([], b"x" * size)

    cache.put(key("a"), answer(200))
    cache.put(key("b"), answer(200))
    cache.put(key("huge"), answer(251))  # above a quarter of the budget: not kept
    assert len(cache) == 2 and cache.size == 400
    assert cache.get(key("a")) is not None  # now the most recently used
    cache.put(key("c"), answer(250))
    cache.put(key("d"), answer(250))  # 4 files > 3: b (least recently used) goes
    assert cache.get(key("b")) is None and len(cache) == 3 and cache.size == 700
    cache.put(key("e"), answer(250))
    cache.put(key("f"), answer(250))  # bytes: 1000 allowed
    assert cache.size <= 1000 and len(cache) <= 3
    cache.put(key("f"), answer(10))  # replaced: its old size is given back
    cache.pop(key("e"))
    assert cache.size == sum(len(a.body) for a in cache._data.values())


def test_sqlite_probe(sqlite_url: str, tmp_path: Path) -> None:
    migrate(sqlite_url)
    store = open_store(sqlite_url)
    try:
        probe = store.probe()
        assert isinstance(probe, SQLiteProbe)
        assert asyncio.run(probe.find((CURRENT, "g", "targets", None))) is None
        before = probe.generation()
        store.update_many("g", [MetaUpdate("targets", 1, b"one")])
        assert probe.generation() != before
        row = store.get_current("g", "targets")
        token = asyncio.run(probe.find((CURRENT, "g", "targets", None)))
        assert row is not None and token is not None and token[:2] == (1, row.sha256)
        assert probe.find_now((BY_HASH, "g", "targets", row.sha256)) == token
        assert probe.find_now((BY_VERSION, "g", "targets", 1)) == token
        assert probe.find_now((BY_VERSION, "g", "targets", 2)) is None
        assert probe.find_now((BY_HASH, "g", "targets", "0" * 64)) is None
        unchanged = probe.generation()
        assert probe.generation() == unchanged  # reading changes nothing
        probe.close()
        again = probe.generation()  # reconnected: data_version restarts, the generation never repeats
        assert again != unchanged and again != before
        store.update_many("g", [MetaUpdate("targets", 2, b"two")])
        assert probe.generation() not in (before, unchanged, again)
    finally:
        store.close()
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StorageUnavailableError):  # never creates a database file
        SQLiteProbe(tmp_path / "missing.db").generation()
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.peers
def test_postgres_probe_batches_and_recovers(postgres_database: str) -> None:
    migrate(postgres_database)
    store = open_store(postgres_database)
    try:
        keys = [(f"g{i}", role) for i in range(4) for role in ("targets", "timestamp")]
        for gun, role in keys[:-1]:  # the last one is never stored
            store.update_many(gun, [MetaUpdate(role, 1, gun.encode()), MetaUpdate(role, 2, role.encode())])
        probe = store.probe()
        assert isinstance(probe, PostgresProbe) and probe.generation() is None

        async def many() -> list[object]:
            return list(
                await asyncio.gather(*(probe.find((CURRENT, g, r, None)) for _ in range(10) for g, r in keys))
            )

        tokens = asyncio.run(many())
        for (gun, role), token in zip([k for _ in range(10) for k in keys], tokens, strict=True):
            row = store.get_current(gun, role)
            if (gun, role) == keys[-1]:
                assert row is None and token is None
            else:
                assert row is not None and isinstance(token, tuple) and token[:2] == (2, row.sha256)

        async def other_lookups() -> list[object]:
            row = store.get_current("g1", "targets")
            assert row is not None
            lookups = [(BY_HASH, "g1", "targets", row.sha256), (BY_VERSION, "g1", "targets", 1)]
            lookups += [(BY_VERSION, "g1", "targets", 7), (CURRENT, "g1", "targets", None)]
            return list(await asyncio.gather(*(probe.find(k) for k in lookups)))

        by_hash, v1, v7, current = asyncio.run(other_lookups())
        assert by_hash == current and v7 is None
        assert isinstance(v1, tuple) and v1[0] == 1

        async def after_kill() -> None:
            assert await probe.find(G0) is not None  # connected on this loop
            with psycopg.connect(postgres_database, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            with pytest.raises(StorageUnavailableError):
                await probe.find(G0)
            with pytest.raises(StorageUnavailableError):  # backing off: no reconnect yet
                await probe.find(G0)
            probe._down_until = 0.0  # (PG_RETRY_S later)
            token = await probe.find(G0)
            assert token is not None and token[0] == 2

        asyncio.run(after_kill())
        store.update_many("g0", [MetaUpdate("targets", 3, b"three")])

        async def later() -> object:
            return await probe.find(G0)

        token = asyncio.run(later())  # another event loop: the probe reconnects on it
        assert isinstance(token, tuple) and token[0] == 3
    finally:
        store.close()


def test_sqlite_store_has_one_probe(sqlite_url: str) -> None:
    migrate(sqlite_url)
    store = open_store(sqlite_url)
    try:
        assert isinstance(store, SQLMetaStore)
        assert store.probe() is store.probe()
    finally:
        store.close()


def test_metrics_count_lean_answers_like_the_general_path(sqlite_url: str) -> None:
    with servers(sqlite_url, count=1) as (server,):
        first_publish(server)
        for _ in range(3):
            assert server.client.get(TUF + "targets.json").status_code == 200
        assert server.client.get(TUF + "1.root.json").status_code == 200
        assert server.client.get(TUF + "targets/missing.json").status_code == 404
        assert server.client.get("/v2/bad..gun/_trust/tuf/root.json").status_code == 404
        text = server.client.get("/metrics").text
        assert 'notar_server_http_requests_total{operation="GetRole",status="200"} 3.0' in text
        assert 'notar_server_http_requests_total{operation="GetRoleByVersion",status="200"} 1.0' in text
        # errors count as "Other" on every path (the operation is known only once a handler answered)
        assert 'notar_server_http_requests_total{operation="Other",status="404"} 2.0' in text
        assert 'operation="GetRole",status="404"' not in text
