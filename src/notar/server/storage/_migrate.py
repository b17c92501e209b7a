"""Schema migrations (Alembic, the only source of the schema) and the revision check done before serving."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from notar.server.storage._engine import (
    WRITE_OPTION,
    create_engine,
    db_errors,
    display_url,
    is_postgres,
    normalize_url,
)
from notar.server.storage.errors import SchemaError

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrate",
    "verify_schema",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key held while migrating, so several server processes starting at once against one
# PostgreSQL database migrate one after the other (the later ones then find the schema current). SQLite
# gets the same from BEGIN IMMEDIATE. Any constant works; this is b"notarmig" as a big-endian int64.
_MIGRATION_LOCK_KEY = int.from_bytes(b"notarmig", "big", signed=True)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration built in code: no ``alembic.ini`` is needed at runtime.

    ``script_location`` is the ``migrations`` directory shipped inside this package.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolation
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(rev.revision for rev in _script().walk_revisions())


def head_revision() -> str:
    """The newest schema revision this notar knows."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise SchemaError("no database migrations found in the notar package")
    return head


def _revision_of(conn: Connection) -> str | None:
    try:
        return MigrationContext.configure(conn).get_current_revision()
    except CommandError as e:  # e.g. several rows in alembic_version
        raise SchemaError(f"cannot read the database schema revision: {e}") from e


def current_revision(url: str) -> str | None:
    """The schema revision stored in the database at ``url``; ``None`` if it was never migrated."""
    parsed = normalize_url(url)
    engine = create_engine(parsed, poolclass=NullPool)
    try:
        with db_errors(f"reading the schema revision of {display_url(parsed)}"), engine.connect() as conn:
            return _revision_of(conn)
    finally:
        engine.dispose()


def _check_revision(revision: str | None, where: str, *, allow_older: bool) -> None:
    head = head_revision()
    if revision == head:
        return
    if revision is None:
        if allow_older:
            return
        raise SchemaError(
            f"database {where} has no notar schema (it was never migrated): run the database migrations first"
        )
    if revision not in _known_revisions():
        raise SchemaError(
            f"database {where} has schema revision {revision!r}, newer than this notar knows"
            f" (latest {head!r}): upgrade notar, or use a database made by this version"
        )
    if not allow_older:
        raise SchemaError(
            f"database {where} has schema revision {revision!r} but this notar needs {head!r}:"
            " run the database migrations"
        )


def verify_schema(engine: Engine) -> None:
    """Refuse (:class:`SchemaError`) a database that is un-migrated, behind, or ahead of this notar."""
    where = display_url(engine.url)
    with db_errors(f"reading the schema revision of {where}"), engine.connect() as conn:
        revision = _revision_of(conn)
    _check_revision(revision, where, allow_older=False)


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``); idempotent.

    Runs in one transaction (PostgreSQL and SQLite both have transactional DDL), under a lock, so that
    concurrent callers migrate one after the other and a failure leaves the database as it was. A database
    whose revision is newer than this notar knows is refused with :class:`SchemaError` and left alone.
    """
    parsed = normalize_url(url)
    where = display_url(parsed)
    engine = create_engine(parsed, poolclass=NullPool)
    try:
        with db_errors(f"migrating {where}"), engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE, the write lock
            with conn.begin():
                if is_postgres(conn):
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                _check_revision(_revision_of(conn), where, allow_older=True)
                cfg = alembic_config(parsed)
                cfg.attributes["connection"] = conn  # env.py runs the migrations on this connection
                try:
                    command.upgrade(cfg, "head")
                except CommandError as e:
                    raise SchemaError(f"migrating {where} failed: {e}") from e
    finally:
        engine.dispose()
