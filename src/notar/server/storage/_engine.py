"""Database URLs and engines: which backends we accept and how their connections are set up."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from notar.server.storage.errors import StorageError, StorageUnavailableError

__all__ = [
    "AUTOCOMMIT_READ_OPTION",
    "WRITE_OPTION",
    "create_engine",
    "db_errors",
    "describe_error",
    "display_url",
    "is_postgres",
    "normalize_url",
    "sqlite_file",
]

# Execution option marking a connection that is going to write. On SQLite its transaction starts with
# BEGIN IMMEDIATE (take the write lock before the first read), see _sqlite_on_begin.
WRITE_OPTION = "notar_write"
# Execution option marking a connection that runs only single-statement reads. On SQLite no BEGIN is issued
# (the sqlite3 module is in autocommit mode, see _sqlite_on_connect): each SELECT is atomic on its own and
# reads one WAL snapshot, and the BEGIN round trip plus the ROLLBACK at the end are saved.
AUTOCOMMIT_READ_OPTION = "notar_autocommit_read"

SQLITE_BUSY_TIMEOUT_S = 15.0  # how long a writer waits for another process's write lock
PG_CONNECT_TIMEOUT_S = 10  # libpq waits forever by default when a host does not answer
# Connection pool (QueuePool) sizing. The server calls storage from a bounded thread pool (see
# notar.server.app.STORAGE_THREADS); connections beyond pool_size are closed when returned, so a pool smaller
# than the number of concurrent callers reconnects (and re-runs the PRAGMAs) all the time under load.
POOL_SIZE = 16
POOL_MAX_OVERFLOW = 32


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and choose our driver: ``postgresql://`` / ``postgres://`` -> psycopg 3.

    Accepted: ``sqlite:///<file>`` and ``postgresql[+psycopg]://…``. SQLite in memory is refused: every
    pooled connection would see its own empty database.
    """
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as e:
        raise StorageError("invalid database URL (expected sqlite:///PATH or postgresql://…)") from e
    backend, _, driver = parsed.drivername.partition("+")  # without loading the dialect
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise StorageError(f"unsupported PostgreSQL driver {driver!r}: use postgresql:// (psycopg 3)")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StorageError(f"unsupported SQLite driver {driver!r}: use sqlite:///PATH")
        db = parsed.database or ""
        if db in ("", ":memory:") or parsed.query.get("mode") == "memory" or "mode=memory" in db:
            raise StorageError("in-memory SQLite is not supported: use sqlite:///PATH/notar.db")
        return parsed
    raise StorageError(f"unsupported database backend {backend!r}: use sqlite:///PATH or postgresql://…")


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; ``None`` for other backends and SQLite URI filenames."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    db = parsed.database or ""
    if db.startswith("file:") or parsed.query.get("uri") not in (None, "", "false", "0"):
        return None
    return Path(db)


def _create_private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file owner-only (0600) unless it exists.

    sqlite3 would create it with 0666 & ~umask, typically 0644: readable by every local user, and it holds
    the server's (encrypted) signing keys. SQLite gives the ``-wal`` and ``-shm`` files it creates next to
    it the database file's permissions, so they are 0600 too. An existing file is left as it is (``notar
    server`` warns when it is group/world-accessible).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:  # it exists (fine), or its directory does not (sqlite3 reports that when connecting)
        return
    os.close(fd)  # an empty file is an empty SQLite database


def display_url(url: URL) -> str:
    """The URL with its password masked, for messages and logs."""
    return url.render_as_string(hide_password=True)


def is_postgres(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def create_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` with our connection setup; ``kwargs`` go to :func:`sqlalchemy.create_engine`.

    SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout so writers from
    several threads or processes queue instead of failing, connections usable from any thread (the pool
    hands each to one thread at a time), and SQLAlchemy (not the ``sqlite3`` module) in charge of BEGIN.
    PostgreSQL: psycopg 3, pre-ping (survive server restarts), a connect timeout.
    Both: statement parameters are hidden from logs and error messages (they contain metadata bytes).
    """
    parsed = normalize_url(url)
    kwargs.setdefault("hide_parameters", True)
    if "poolclass" not in kwargs and "pool" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_MAX_OVERFLOW)
    connect_args: dict[str, Any] = dict(kwargs.pop("connect_args", {}))
    try:
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_file(parsed)
            if path is not None:
                _create_private_sqlite_file(path)
            connect_args.setdefault("check_same_thread", False)
            connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
            engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        if "connect_timeout" not in parsed.query:
            connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
        if "application_name" not in parsed.query:
            connect_args.setdefault("application_name", "notar")
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    except (exc.ArgumentError, ImportError, TypeError) as e:
        raise StorageError(f"cannot set up the database engine for {display_url(parsed)}: {e}") from e


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Stop the sqlite3 module from issuing its own BEGIN (it skips it before SELECTs, which would split our
    # "check versions, then insert" into two transactions); _sqlite_on_begin issues it instead.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _sqlite_wal(cursor)
    finally:
        cursor.close()


def _sqlite_wal(cursor: Any) -> None:
    """Switch the database file to WAL (persistent: normally only its first connection ever does it).

    The switch needs an exclusive lock and SQLite reports "database is locked" at once, without using the
    busy timeout, while another connection writes (e.g. several processes creating the database at the
    same time); retry for as long as the busy timeout.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(conn: Connection) -> None:
    # A write transaction takes SQLite's write lock up front. A deferred one would read a WAL snapshot and
    # then, if another writer committed meanwhile, fail its first write with SQLITE_BUSY_SNAPSHOT ("database
    # is locked") without waiting; IMMEDIATE waits (busy timeout) and then reads the latest state, so the
    # version check and the inserts see the same data. Reads stay deferred and never block anyone.
    options = conn.get_execution_options()
    if options.get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif options.get(AUTOCOMMIT_READ_OPTION):
        return  # single-statement read: SQLite's implicit per-statement transaction is enough
    else:
        conn.exec_driver_sql("BEGIN")


def describe_error(e: BaseException) -> str:
    """A one-line description of a database error: the driver's exception and first message line only.

    SQLAlchemy's own text appends the SQL statement; parameters are hidden by ``hide_parameters``, but the
    driver's message is all anyone needs in a log.
    """
    orig = e.orig if isinstance(e, exc.DBAPIError) and e.orig is not None else e
    lines = str(orig).strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > 300:
        first = first[:297] + "..."
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def is_unavailable(e: exc.SQLAlchemyError) -> bool:
    """Errors that mean "the database cannot serve us right now" rather than "this request is wrong"."""
    if isinstance(e, exc.DBAPIError) and e.connection_invalidated:
        return True
    return isinstance(
        e, exc.OperationalError | exc.InterfaceError | exc.DisconnectionError | exc.TimeoutError
    )


@contextlib.contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver exceptions raised inside the block into :class:`StorageError` subclasses."""
    try:
        yield
    except StorageError:
        raise
    except exc.SQLAlchemyError as e:
        if is_unavailable(e):
            raise StorageUnavailableError(f"{what}: database unavailable ({describe_error(e)})") from e
        raise StorageError(f"{what}: database error ({describe_error(e)})") from e
