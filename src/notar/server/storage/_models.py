"""ORM models of the server database.

These classes describe the schema for queries; they never create it. The schema comes only from the Alembic
migrations in ``migrations/versions`` (a test runs Alembic's ``compare_metadata`` to keep both in step).
Column names and types follow notary-server's SQL storage (``server/storage/sql_models.go``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "ChangeRow", "ServerKeyRow", "TufFileRow", "UTCDateTime"]

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamp with time zone``; SQLite has no time zones, so the value is stored as naive
    UTC and read back as aware UTC. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to storage; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TufFileRow(Base):
    """One version of one role of one GUN (``tuf_files``)."""

    __tablename__ = "tuf_files"
    __table_args__ = (
        # Serialises writers: a second insert of the same (gun, role, version) fails -> OldVersionError.
        # Its index also serves the (gun, role, version) and (gun, role) lookups.
        UniqueConstraint("gun", "role", "version"),
        Index("ix_tuf_files_gun_role_sha256", "gun", "role", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=text("CURRENT_TIMESTAMP"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=text("CURRENT_TIMESTAMP"))
    gun: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(CHAR(64))


class ChangeRow(Base):
    """One changefeed record (``changefeed``). ``sha256`` is NULL for deletions (reported as ``""``)."""

    __tablename__ = "changefeed"
    __table_args__ = (
        # (gun, id): the per-GUN feed is "WHERE gun = ? AND id > ? ORDER BY id".
        Index("ix_changefeed_gun_id", "gun", "id"),
        CheckConstraint("category IN ('update', 'deletion')", name="category"),
        # SQLite: never reuse an ID, even if the newest rows were ever pruned (readers page by ID).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=text("CURRENT_TIMESTAMP"))
    gun: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(CHAR(64))
    category: Mapped[str] = mapped_column(String(20), server_default=text("'update'"))


class ServerKeyRow(Base):
    """A timestamp/snapshot key held by the server (``server_keys``); ``private`` is encrypted upstream."""

    __tablename__ = "server_keys"
    __table_args__ = (UniqueConstraint("gun", "role", "key_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=text("CURRENT_TIMESTAMP"))
    gun: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(255))
    key_id: Mapped[str] = mapped_column(String(255))
    algorithm: Mapped[str] = mapped_column(String(50))
    public: Mapped[bytes] = mapped_column(LargeBinary)
    private: Mapped[bytes] = mapped_column(LargeBinary)
