"""Two `notar server` processes on one PostgreSQL database behave as one server.

They share the database and the server-key passphrase (run_notar_server sets the same one) and must keep no
state of their own: a snapshot key created through one is usable through the other, concurrent publishers
split across both never lose an update, and either one serves the same changefeed.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from notar.crypto import PublicKey
from notar.server.storage import current_revision, head_revision
from notar.tuf import Envelope, FileMeta, Snapshot, Targets, Timestamp
from tests.lab import LabPKI, NotarServer, NotaryCLI, child_env, run_notar_server
from tests.server.tuf_builders import DIGEST, Repo, multipart

pytestmark = pytest.mark.peers

HEX_DIGEST = DIGEST.hex()
SIZE = "401"
PUBLISHERS = 10


@pytest.fixture
def two_servers(
    lab_pki: LabPKI, postgres_database: str, tmp_path: Path
) -> Iterator[tuple[NotarServer, NotarServer]]:
    """Servers A and B (TLS) on the same fresh PostgreSQL database."""
    with (
        run_notar_server(lab_pki, tmp_path / "server-a", database_url=postgres_database) as a,
        run_notar_server(lab_pki, tmp_path / "server-b", database_url=postgres_database) as b,
    ):
        yield a, b


def client(server: NotarServer) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=30)


def tuf_url(server: NotarServer, gun: str, name: str = "") -> str:
    return f"{server.url}/v2/{gun}/_trust/tuf/{name}"


def changefeed(server: NotarServer, gun: str) -> list[dict[str, Any]]:
    with client(server) as http:
        r = http.get(f"{server.url}/v2/{gun}/_trust/changefeed", params={"records": 1000})
    assert r.status_code == 200, r.text
    feed = r.json()
    assert feed["count"] == len(feed["records"])
    records: list[dict[str, Any]] = feed["records"]
    return records


def notary(server: NotarServer, trust_dir: Path) -> NotaryCLI:
    return NotaryCLI(server.url, server.ca, trust_dir, home=trust_dir.with_name(trust_dir.name + "-home"))


def test_notary_cli_across_two_servers(two_servers: tuple[NotarServer, NotarServer], tmp_path: Path) -> None:
    a, b = two_servers
    gun = f"127.0.0.1:5000/notar/pg-{uuid.uuid4().hex[:8]}"
    via_a = notary(a, tmp_path / "trust")  # the publisher's trust dir, through A ...
    via_b = notary(b, tmp_path / "trust")  # ... and the same trust dir through B

    via_a.run("init", gun, "-p")
    via_a.run("addhash", gun, "1.0", SIZE, "--sha256", HEX_DIGEST)
    via_a.run("publish", gun)

    fresh_b = notary(b, tmp_path / "fresh-b")  # a client that has never seen the repository
    listing = fresh_b.run("list", gun).stdout
    assert "1.0" in listing and HEX_DIGEST in listing and "targets" in listing, listing

    # both servers hand out the same timestamp key (it lives in the shared database). Not the snapshot key
    # yet: it is client-held, and then GET snapshot.key makes a new key on every call (as Go does).
    with client(a) as ha, client(b) as hb:
        key_a, key_b = ha.get(tuf_url(a, gun, "timestamp.key")), hb.get(tuf_url(b, gun, "timestamp.key"))
        assert key_a.status_code == key_b.status_code == 200, (key_a.text, key_b.text)
        assert key_a.json() == key_b.json()

    # B creates a new server-managed snapshot key; A must sign snapshots with it afterwards
    via_b.run("key", "rotate", gun, "snapshot", "-r")
    with client(a) as ha, client(b) as hb:
        key_a, key_b = ha.get(tuf_url(a, gun, "snapshot.key")), hb.get(tuf_url(b, gun, "snapshot.key"))
        assert key_a.json() == key_b.json()
        new_snapshot_key = PublicKey.from_dict(key_b.json())

    via_a.run("addhash", gun, "2.0", SIZE, "--sha256", HEX_DIGEST)
    via_a.run("publish", gun)

    with client(a) as ha:
        snap = Envelope.from_bytes(ha.get(tuf_url(a, gun, "snapshot.json")).content, expect=Snapshot)
    assert [s.keyid for s in snap.signatures] == [new_snapshot_key.key_id]

    for reader in (fresh_b, notary(a, tmp_path / "fresh-a"), notary(b, tmp_path / "fresh-b2")):
        listing = reader.run("list", gun).stdout
        assert "1.0" in listing and "2.0" in listing, listing

    # one changefeed row per accepted update (init, publish, rotate, publish), the same on both servers
    feed = changefeed(a, gun)
    assert feed == changefeed(b, gun)
    assert [r["Version"] for r in feed] == list(range(1, len(feed) + 1))
    assert len(feed) == 4, feed


def test_concurrent_publishers_on_two_servers(two_servers: tuple[NotarServer, NotarServer]) -> None:
    servers = two_servers
    a = servers[0]
    gun = f"127.0.0.1:5000/notar/pg-race-{uuid.uuid4().hex[:8]}"
    with client(a) as http:
        keys = {
            r: PublicKey.from_dict(http.get(tuf_url(a, gun, f"{r}.key")).json())
            for r in ("timestamp", "snapshot")
        }
        repo = Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
        body, ctype = multipart(repo.first_publish())
        r = http.post(tuf_url(a, gun), content=body, headers={"Content-Type": ctype})
        assert r.status_code == 200, r.text

    statuses: list[tuple[int, int]] = []  # (server index, status)
    lock = threading.Lock()

    def publisher(i: int) -> int:
        index = i % 2  # even: A, odd: B
        server = servers[index]
        attempts = 0
        with client(server) as http:
            while True:
                attempts += 1
                assert attempts < 200, "publisher starved"
                got = http.get(tuf_url(server, gun, "targets.json"))
                assert got.status_code == 200, got.text
                body = Envelope.from_bytes(got.content, expect=Targets).signed
                body.targets[f"tag-{i}"] = FileMeta(401, {"sha256": DIGEST})
                body.version += 1
                signed = Envelope.sign(body, [repo.targets_key])
                payload, ctype = multipart({"targets": signed.data})
                r = http.post(tuf_url(server, gun), content=payload, headers={"Content-Type": ctype})
                with lock:
                    statuses.append((index, r.status_code))
                if r.status_code == 200:
                    return attempts
                assert r.status_code == 400, r.text
                assert r.json()["errors"][0]["code"] == "VERSION", r.text

    with ThreadPoolExecutor(PUBLISHERS) as pool:
        attempts = list(pool.map(publisher, range(PUBLISHERS)))

    assert all(status in (200, 400) for _, status in statuses), statuses
    assert [status for _, status in statuses].count(200) == PUBLISHERS
    assert {index for index, status in statuses if status == 200} == {0, 1}  # both servers accepted updates

    for server in servers:  # both servers see the same final state
        with client(server) as http:
            final = Envelope.from_bytes(
                http.get(tuf_url(server, gun, "targets.json")).content, expect=Targets
            )
            assert set(final.signed.targets) == {f"tag-{i}" for i in range(PUBLISHERS)}
            assert final.signed.version == PUBLISHERS + 1
            for version in range(1, PUBLISHERS + 2):  # every accepted version is stored, no gaps
                assert http.get(tuf_url(server, gun, f"{version}.targets.json")).status_code == 200
            assert http.get(tuf_url(server, gun, f"{PUBLISHERS + 2}.targets.json")).status_code == 404
            ts = Envelope.from_bytes(
                http.get(tuf_url(server, gun, "timestamp.json")).content, expect=Timestamp
            )
            assert ts.signed.version == PUBLISHERS + 1

    feed = changefeed(a, gun)
    assert feed == changefeed(servers[1], gun)
    assert [r["Version"] for r in feed] == list(range(1, PUBLISHERS + 2))  # one row per accepted update
    ids = [int(r["ID"]) for r in feed]
    assert ids == sorted(set(ids))
    assert len({r["SHA256"] for r in feed}) == len(feed)
    assert max(attempts) > 1  # there really was contention


def race_first_publish(a: NotarServer, b: NotarServer, gun: str) -> list[httpx.Response]:
    """Two clients with their own root and targets keys create ``gun`` at once, through A and through B."""
    with client(a) as http:
        keys = {
            r: PublicKey.from_dict(http.get(tuf_url(a, gun, f"{r}.key")).json())
            for r in ("timestamp", "snapshot")
        }
    repos = [Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"]) for _ in range(2)]
    barrier = threading.Barrier(2)

    def first_publish(i: int) -> httpx.Response:
        server = (a, b)[i]
        body, ctype = multipart(repos[i].first_publish(f"from-{i}"))
        with client(server) as http:
            barrier.wait(timeout=30)
            return http.post(tuf_url(server, gun), content=body, headers={"Content-Type": ctype})

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(first_publish, range(2)))


def test_racing_first_publish_through_both_servers(two_servers: tuple[NotarServer, NotarServer]) -> None:
    """One repository created at once through A and through B: exactly one wins."""
    a, b = two_servers
    for _ in range(5):
        gun = f"127.0.0.1:5000/notar/pg-init-{uuid.uuid4().hex[:8]}"
        responses = race_first_publish(a, b, gun)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 400], [(r.status_code, r.text) for r in responses]
        loser = next(r for r in responses if r.status_code == 400)
        # VERSION when both were validated before either was stored (the database refuses the second
        # version 1); INVALID_UPDATE (ErrBadRoot) when the loser is validated against the winner's root
        assert loser.json()["errors"][0]["code"] in ("VERSION", "INVALID_UPDATE"), loser.text
        winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
        for server in (a, b):
            with client(server) as http:
                got = http.get(tuf_url(server, gun, "targets.json"))
            assert set(Envelope.from_bytes(got.content, expect=Targets).signed.targets) == {f"from-{winner}"}
        assert len(changefeed(a, gun)) == 1


def test_migrate_already_migrated_database(
    two_servers: tuple[NotarServer, NotarServer], postgres_database: str, tmp_path: Path
) -> None:
    a, _ = two_servers  # both servers migrated the database on start
    assert current_revision(postgres_database) == head_revision()
    argv = [sys.executable, "-m", "notar", "server", "migrate", "--database-url", postgres_database]
    for _ in range(2):
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=child_env(home=tmp_path),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "database is at the current schema" in done.stderr
    assert current_revision(postgres_database) == head_revision()
    with client(a) as http:  # the running server is unaffected
        assert http.get(f"{a.url}/_notary_server/health").status_code == 200
