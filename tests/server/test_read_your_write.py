"""Read-your-write across the workers of one real `notar server --workers 2`, on SQLite and on PostgreSQL.

Each worker process keeps current answers in memory (notar.server.app). A publish through one worker must
be seen by every request that starts after the publish returned, through either worker, although the other
one holds the previous version in its cache:

* sequentially: keep-alive connections are mapped to the worker process that serves them (through
  /proc), both workers are covered, and after each publish (through one worker, then the other) every
  connection reads timestamp, snapshot and targets and must get the new versions;
* concurrently: reader threads GET timestamp.json and targets.json without pause while versions are
  published; every read that *started* after a publish returned must show at least that version.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from notar.crypto import PublicKey
from tests.lab import LabPKI, NotarServer, run_notar_server
from tests.server.tuf_builders import Repo, multipart

pytestmark = pytest.mark.peers

ROUNDS = 12  # sequential publishes
MAX_CONNECTIONS = 64  # opened at most to find connections served by each worker
PER_WORKER = 3  # reader connections wanted per worker
READER_THREADS = 6
CONCURRENT_PUBLISHES = 15


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, lab_pki: LabPKI, tmp_path: Path) -> Iterator[NotarServer]:
    url = request.getfixturevalue("postgres_database") if request.param == "postgres" else None
    with run_notar_server(lab_pki, tmp_path / "server", database_url=url, extra_args=("--workers", "2")) as s:
        yield s


class Connection:
    """One keep-alive HTTPS connection to the server (http.client: its socket is ours to inspect)."""

    def __init__(self, server: NotarServer, gun: str) -> None:
        host, port = server.url.removeprefix("https://").rsplit(":", 1)
        self.port = int(port)
        ctx = ssl.create_default_context(cafile=str(server.ca))
        self.conn = http.client.HTTPSConnection(host, self.port, context=ctx, timeout=30)
        self.base = f"/v2/{gun}/_trust/tuf/"

    def request(self, method: str, name: str, body: bytes | None = None, ctype: str = "") -> bytes:
        headers = {"Content-Type": ctype} if ctype else {}
        self.conn.request(method, self.base + name, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        assert resp.status == 200, (method, name, resp.status, data[:300])
        return data

    def version(self, role: str) -> int:
        version: int = json.loads(self.request("GET", f"{role}.json"))["signed"]["version"]
        return version

    def publish(self, files: dict[str, bytes]) -> None:
        body, ctype = multipart(files)
        self.request("POST", "", body, ctype)

    def local_port(self) -> int:
        assert self.conn.sock is not None
        return int(self.conn.sock.getsockname()[1])

    def close(self) -> None:
        self.conn.close()


def worker_pids(server_pid: int) -> list[int]:
    """The server's child processes (uvicorn's workers, maybe multiprocessing helpers)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:  # gone
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == server_pid:  # field 4: ppid
            children.append(int(stat.parent.name))
    return children


def serving_worker(server_port: int, client_port: int, pids: list[int]) -> int:
    """The worker process holding the server side of the TCP connection from ``client_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inodes.add(f"socket:[{inode}]")
    assert inodes, f"no server socket for client port {client_port}"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            try:
                if str(fd.readlink()) in inodes:
                    return pid
            except OSError:  # closed meanwhile
                continue
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_publish_through_one_worker_is_read_through_both(server: NotarServer) -> None:
    gun = f"127.0.0.1:5000/notar/ryw-{uuid.uuid4().hex[:8]}"
    setup = Connection(server, gun)
    keys = {
        r: PublicKey.from_dict(json.loads(setup.request("GET", f"{r}.key")))
        for r in ("timestamp", "snapshot")
    }
    repo = Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
    setup.publish(repo.first_publish("v1"))
    setup.close()

    # keep-alive connections, each pinned to the worker that accepted it; PER_WORKER per worker
    pids = worker_pids(server.pid)
    by_worker: dict[int, list[Connection]] = {}
    opened: list[Connection] = []
    while len(opened) < MAX_CONNECTIONS and (
        len(by_worker) < 2 or min(len(c) for c in by_worker.values()) < PER_WORKER
    ):
        conn = Connection(server, gun)
        opened.append(conn)
        assert conn.version("timestamp") == 1  # connects; the worker keeps version 1
        by_worker.setdefault(serving_worker(conn.port, conn.local_port(), pids), []).append(conn)
    assert len(by_worker) == 2, f"{len(opened)} connections all went to one worker"
    assert min(len(c) for c in by_worker.values()) >= PER_WORKER
    readers = [c for conns in by_worker.values() for c in conns[:PER_WORKER]]
    for conn in readers:  # every worker now holds version 1 of all three
        assert [conn.version(r) for r in ("timestamp", "snapshot", "targets")] == [1, 1, 1]

    workers = sorted(by_worker)
    try:
        assert repo.targets is not None
        for version in range(2, 2 + ROUNDS):
            publisher = by_worker[workers[version % 2]][0]  # alternate: through one worker, then the other
            publisher.publish({"targets": repo.sign_targets(f"v{version}", version=version).data})
            for conn in readers:
                got = [conn.version(r) for r in ("timestamp", "snapshot", "targets", "timestamp")]
                assert got == [version] * 4, (version, got)
    finally:
        for conn in opened:
            conn.close()


def test_concurrent_readers_never_see_a_version_older_than_a_finished_publish(server: NotarServer) -> None:
    gun = f"127.0.0.1:5000/notar/ryw-{uuid.uuid4().hex[:8]}"
    publisher = Connection(server, gun)
    keys = {
        r: PublicKey.from_dict(json.loads(publisher.request("GET", f"{r}.key")))
        for r in ("timestamp", "snapshot")
    }
    repo = Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
    publisher.publish(repo.first_publish("v1"))

    published: list[tuple[float, int]] = [(time.monotonic(), 1)]  # (when the POST returned, version)
    reads: list[tuple[float, str, int]] = []  # (when the GET was sent, role, version)
    lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def reader(index: int) -> None:
        conns = [Connection(server, gun) for _ in range(2)]  # two connections: likely both workers
        role = ("timestamp", "targets")[index % 2]
        try:
            while not done.is_set():
                for conn in conns:
                    started = time.monotonic()
                    version = conn.version(role)
                    with lock:
                        reads.append((started, role, version))
        except BaseException as e:
            failures.append(e)
        finally:
            for conn in conns:
                conn.close()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READER_THREADS)]
    for t in threads:
        t.start()
    try:
        assert repo.targets is not None
        for version in range(2, 2 + CONCURRENT_PUBLISHES):
            publisher.publish({"targets": repo.sign_targets(f"v{version}", version=version).data})
            with lock:
                published.append((time.monotonic(), version))
            with lock:
                seen = len(reads)
            while not failures:  # let readers read this version a while before the next publish
                with lock:
                    if len(reads) >= seen + 3 * READER_THREADS:
                        break
                time.sleep(0.001)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        publisher.close()
    assert not failures, failures
    assert len(reads) >= CONCURRENT_PUBLISHES * 3 * READER_THREADS
    stale = []
    for started, role, version in reads:
        finished_before = max(v for at, v in published if at <= started)
        if version < finished_before:
            stale.append((role, version, finished_before))
    assert not stale, f"{len(stale)} of {len(reads)} reads were stale, e.g. {stale[:5]}"
