"""Red-team finding: the SQLite database, its WAL/SHM files and ``--data-dir`` were readable by other users.

The database file is now created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
database file's permissions), and a data directory notar creates is 0700, whatever the umask. A directory
or database file that already exists keeps its permissions; a group/world-accessible one is warned about.
All tests run under umask 022, where sqlite3 alone creates 0644 files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.server.storage import MetaUpdate, migrate, open_store, sqlite_file
from tests.lab import child_env, loopback_get, run_notar_server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_database_and_wal_files_are_created_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "custom.db"  # any sqlite:/// path, not only the one in --data-dir
    url = f"sqlite:///{db}"
    assert sqlite_file(url) == db
    migrate(url)
    assert mode(db) == 0o600
    store = open_store(url)
    try:
        store.update_many("example.com/perm", [MetaUpdate("targets", 1, b"{}")])  # a write: WAL in use
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            assert side.exists() and mode(side) == 0o600, suffix
    finally:
        store.close()
    assert mode(db) == 0o600


def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    db.chmod(0o640)
    migrate(f"sqlite:///{db}")
    assert mode(db) == 0o640


def test_sqlite_file_of_other_urls() -> None:
    assert sqlite_file("postgresql://notar@db/notar") is None
    assert sqlite_file("sqlite:///file:x.db?mode=ro&uri=true") is None
    assert sqlite_file("sqlite:///relative.db") == Path("relative.db")


def notar(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=child_env(home=home),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.peers
def test_migrate_creates_a_private_data_dir_and_warns_about_a_shared_one(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    r = notar("server", "migrate", "--data-dir", str(data), home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert mode(data) == 0o700 and mode(data / "notar.db") == 0o600
    assert mode(data.parent) == 0o755  # parents are not notar's: the usual permissions
    assert "warning" not in r.stderr

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    r = notar("server", "migrate", "--data-dir", str(shared), home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"data directory {shared} is accessible to other users (mode 0755)" in r.stderr
    assert f"chmod 700 {shared}" in r.stderr
    assert mode(shared) == 0o755  # the owner's choice is kept
    assert mode(shared / "notar.db") == 0o600
    (shared / "notar.db").chmod(0o644)
    r = notar("server", "migrate", "--data-dir", str(shared), home=tmp_path)
    assert r.returncode == 0 and f"database file {shared / 'notar.db'} is accessible" in r.stderr
    assert "Traceback" not in r.stderr

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    r = notar("server", "migrate", "--data-dir", str(blocked / "data"), home=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"cannot create --data-dir {blocked / 'data'}: {blocked}: File exists" in r.stderr


@pytest.mark.peers
def test_running_server_files_are_owner_only(tmp_path: Path) -> None:
    with run_notar_server(None, tmp_path / "server") as server:
        # a write: the server creates its timestamp key (and SQLite its WAL)
        status, _ = loopback_get(f"{server.url}/v2/example.com/perm/_trust/tuf/timestamp.key")
        assert status == 200
        data = server.data_dir
        assert mode(data) == 0o700
        for name in ("notar.db", "notar.db-wal", "notar.db-shm"):
            assert (data / name).exists() and mode(data / name) == 0o600, name
        assert "accessible to other users" not in server.log.read_text()
