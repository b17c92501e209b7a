"""Probes: which stored row a read would return, asked far more cheaply than reading it, from async code.

The server keeps answers per process (the current file of a role, a file by hash, a file by version) and
must never answer with bytes that a publish or a deletion through any process (or any server sharing the
database) has replaced. Before it answers from its copy, it asks a probe which row the store would return
for that request (:data:`RowKey`: the same lookups as ``get_current``, ``get_checksum`` and
``get_version``) and compares that row's :data:`Token` with the one its copy was made from. The probe reads
three small columns (version, sha256, created_at) of one index entry's row, not the file, and is called on
the event loop, with no thread hop:

* SQLite (:class:`SQLiteProbe`): one private ``sqlite3`` connection that never writes. ``PRAGMA
  data_version`` (:meth:`SQLiteProbe.generation`, a few microseconds: SQLite reads it from the WAL index in
  shared memory) changes whenever any other connection, in any process, commits to the file; while it has
  not changed, no row can have changed and not even the token query is needed. The queries do not wait for
  locks (busy timeout 0): a WAL reader is never blocked by writers, and in the rare case SQLite answers
  "busy" the caller takes its ordinary, thread-pooled path instead.
* PostgreSQL (:class:`PostgresProbe`): one psycopg ``AsyncConnection`` per process and event loop. Requests
  that arrive while probe queries are in flight wait for the next batch, which then answers for all of them
  (one prepared single-key query per distinct key, back to back: cheaper for both sides than one query over
  an array of keys, which cost about four times as much CPU per key): one query at a time, each issued after
  every request it answers arrived. That is what makes a publish visible to every later request: READ
  COMMITTED shows each statement every transaction committed before the statement began, and the publish
  committed before the reading request was sent.

A probe that fails raises :class:`~notar.server.storage.errors.StorageUnavailableError`; callers then read
through the store as usual (which reports the failure, or succeeds). The PostgreSQL probe reconnects at most
once a second after a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from notar.server.storage._models import TufFileRow
from notar.server.storage.errors import StorageUnavailableError

__all__ = [
    "BY_HASH",
    "BY_VERSION",
    "CURRENT",
    "Generation",
    "MetaProbe",
    "PostgresProbe",
    "RowKey",
    "SQLiteProbe",
    "Token",
]

#: (version, sha256, created_at as the driver returns it) of the current row of one (gun, role): what
#: identifies the bytes a reader would get. Opaque: compare tokens of the same probe only.
Token = tuple[int, str, Any]
#: (connection number, SQLite data_version). data_version counts per connection (a new connection starts
#: again from a low value), so a value is only comparable with values read on the same connection; the
#: connection number (unique in the process) makes a generation read after a reconnect differ from every
#: earlier one.
Generation = tuple[int, int]
_CONNECTIONS = itertools.count(1)

CURRENT = "current"  # (CURRENT, gun, role, None): the highest version of role (get_current)
BY_HASH = "hash"  # (BY_HASH, gun, role, sha256 hex, lower case): the newest row with that hash (get_checksum)
BY_VERSION = "version"  # (BY_VERSION, gun, role, version): that version (get_version)
#: Which row: (kind, gun, role, argument), see CURRENT, BY_HASH and BY_VERSION.
RowKey = tuple[str, str, str, Any]

_TABLE = TufFileRow.__tablename__
# The store's lookups (storage/_sql.py: _GET_CURRENT, _GET_CHECKSUM, _GET_VERSION) without the data: one
# index scan each, (gun, role, version) unique or (gun, role, sha256).
_SELECT = f"SELECT version, sha256, created_at FROM {_TABLE} WHERE gun = ? AND role = ?"  # noqa: S608
_SQLITE = {
    CURRENT: _SELECT + " ORDER BY version DESC LIMIT 1",
    BY_HASH: _SELECT + " AND sha256 = ? ORDER BY version DESC LIMIT 1",
    BY_VERSION: _SELECT + " AND version = ?",
}
_PG = {kind: sql.replace("?", "%s") for kind, sql in _SQLITE.items()}
PG_PROBE_TIMEOUT_S = 10.0  # one probe query (and connecting); a database that hangs fails over to the store
PG_RETRY_S = 1.0  # after a failure, requests use the store (no probe) for this long before reconnecting


class MetaProbe(Protocol):
    """Cheap questions about the current rows, for code running on an event loop."""

    def generation(self) -> Generation | None:
        """A value that changes whenever anything is committed to the database (never to a value it had
        before), or ``None`` when the backend has no such cheap counter (then :meth:`find` must be asked
        every time)."""
        ...

    async def find(self, key: RowKey) -> Token | None:
        """The :data:`Token` of the row the store's lookup for ``key`` returns, or ``None``."""
        ...

    def close(self) -> None:
        """Release the connection (the probe reconnects if used again)."""
        ...


class SQLiteProbe:
    """:class:`MetaProbe` on a SQLite file in WAL mode: one read-only connection of its own."""

    def __init__(self, path: Path) -> None:
        self._uri = path.resolve().as_uri() + "?mode=rw"  # never creates the file (the store did, 0600)
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None  # reused: one cursor object less per request
        self._number = 0  # of the current connection, see Generation
        self._lock = threading.Lock()  # one statement at a time (the event loop is normally the only user)

    def _connection(self) -> sqlite3.Cursor:
        cursor = self._cursor
        if cursor is None:
            conn = sqlite3.connect(
                self._uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
            )
            self._conn = conn
            conn.execute("PRAGMA query_only=ON")
            cursor = self._cursor = conn.cursor()
            self._number = next(_CONNECTIONS)
        return cursor

    def _fail(self, e: sqlite3.Error) -> StorageUnavailableError:
        self.close()
        return StorageUnavailableError(f"probe: {type(e).__name__}: {e}")

    def generation(self) -> Generation:
        with self._lock:
            try:
                row = self._connection().execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as e:
                raise self._fail(e) from e
            return (self._number, int(row[0]))

    def find_now(self, key: RowKey) -> Token | None:
        """:meth:`find`, synchronously (a SQLite read of one index entry's row)."""
        kind, gun, role, arg = key
        params = (gun, role) if kind == CURRENT else (gun, role, arg)
        with self._lock:
            try:
                row = self._connection().execute(_SQLITE[kind], params).fetchone()
            except sqlite3.Error as e:
                raise self._fail(e) from e
        return None if row is None else (row[0], row[1], row[2])

    async def find(self, key: RowKey) -> Token | None:
        return self.find_now(key)

    def close(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            conn.close()


class PostgresProbe:
    """:class:`MetaProbe` on PostgreSQL: one async connection, one query in flight, requests batched."""

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        self._kwargs = {**connect_kwargs, "autocommit": True}
        self._conn: Any = None  # psycopg.AsyncConnection, imported on first use
        self._cursor: Any = None  # its one cursor (psycopg.AsyncCursor), reused for every query
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[RowKey, list[asyncio.Future[Token | None]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._down_until = 0.0  # monotonic time until which the probe does not reconnect

    def generation(self) -> None:
        return None

    async def find(self, key: RowKey) -> Token | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection belongs to one event loop (tests run several)
            self._rebind(loop)
        if self._cursor is None and time.monotonic() < self._down_until:
            raise StorageUnavailableError("probe: the database failed recently")
        waiter: asyncio.Future[Token | None] = loop.create_future()
        waiting = self._pending.get(key)
        if waiting is None:
            self._pending[key] = [waiter]
        else:
            waiting.append(waiter)
        if self._runner is None:
            self._runner = loop.create_task(self._run())
        return await waiter

    async def _run(self) -> None:
        try:
            while self._pending:
                # Everyone in this batch arrived before its query is sent; later arrivals wait for the next.
                batch, self._pending = self._pending, {}
                try:
                    async with asyncio.timeout(PG_PROBE_TIMEOUT_S):
                        found = await self._query(list(batch))
                except Exception as e:  # connection lost, timeout, ...: fail this batch, back off
                    self._drop()
                    self._down_until = time.monotonic() + PG_RETRY_S
                    error = StorageUnavailableError(f"probe: {type(e).__name__}: {e}")
                    for waiters in batch.values():
                        for w in waiters:
                            if not w.done():
                                w.set_exception(error)
                    continue
                for key, waiters in batch.items():
                    token = found.get(key)
                    for w in waiters:
                        if not w.done():  # a request that went away meanwhile
                            w.set_result(token)
        finally:
            self._runner = None

    async def _query(self, keys: Sequence[RowKey]) -> dict[RowKey, Token]:
        cursor = self._cursor
        if cursor is None:
            if time.monotonic() < self._down_until:
                raise StorageUnavailableError("the database failed recently")
            import psycopg

            self._conn = await psycopg.AsyncConnection.connect(**self._kwargs)
            cursor = self._cursor = self._conn.cursor()
        found: dict[RowKey, Token] = {}
        for key in keys:
            kind, gun, role, arg = key
            await cursor.execute(
                _PG[kind], (gun, role) if kind == CURRENT else (gun, role, arg), prepare=True
            )
            row = await cursor.fetchone()
            if row is not None:
                found[key] = (row[0], row[1], row[2])
        return found

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._drop()
        self._pending = {}
        self._runner = None
        self._loop = loop

    def _drop(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            conn.pgconn.finish()  # closes the socket now, from any thread or loop

    def close(self) -> None:
        self._drop()
