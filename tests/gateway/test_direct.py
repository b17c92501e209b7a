"""Blob bodies copied by a thread (notar.gateway.direct), through a real `notar gateway` process.

The in-process tests (test_passthrough.py) cover the event-loop path; the direct path needs the gateway's own
uvicorn protocol, so here the gateway runs as a process in front of the scripted upstream (in a thread), once
on plain HTTP (direct copies) and once with TLS on the listener (which must stay on the event loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.gateway.test_passthrough import BIG, BLOB, Upstream
from tests.lab import LabPKI, run_gateway

COPIED = "body bytes copied by a thread"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    loop = asyncio.new_event_loop()
    up = Upstream()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(up.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="scripted-upstream", daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield up
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@dataclass(frozen=True)
class Served:
    url: str
    verify: ssl.SSLContext | bool
    log: Path
    tls: bool

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.verify, trust_env=False, timeout=30)


@pytest.fixture(scope="module", params=["http", "https"])
def served(
    request: pytest.FixtureRequest,
    upstream: Upstream,
    lab_pki: LabPKI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    tls = request.param == "https"
    extra: tuple[str, ...] = ("--log-level", "debug")
    if tls:
        extra += ("--tls-cert", str(lab_pki.server_cert), "--tls-key", str(lab_pki.server_key))
    with run_gateway(
        tmp_path_factory.mktemp(f"gw-{request.param}"),
        upstream=f"http://127.0.0.1:{upstream.port}",
        trust_server="http://127.0.0.1:9",  # never asked: blobs carry no trust decision
        ca=None,
        config=None,
        extra=extra,
    ) as gw:
        url = gw.url.replace("http://", "https://") if tls else gw.url
        verify = ssl.create_default_context(cafile=str(lab_pki.ca)) if tls else False
        yield Served(url, verify, gw.log, tls)


def test_blob_bytes_range_head_and_keep_alive(served: Served) -> None:
    with served.client() as c:
        for _ in range(3):  # one connection: the server's Content-Length accounting must stay right
            r = c.get("/v2/a/b/blobs/sha256:cl")
            assert r.status_code == 200 and r.content == BLOB
        r = c.get("/v2/a/b/blobs/sha256:cl", headers={"Range": "bytes=1000-1199999"})
        assert r.status_code == 206 and r.content == BLOB[1000:1200000]
        r = c.head("/v2/a/b/blobs/sha256:cl")
        assert r.status_code == 200 and r.headers["content-length"] == str(len(BLOB)) and not r.content
        r = c.get("/v2/a/b/blobs/sha256:chunked")  # no Content-Length: the event-loop path
        assert r.status_code == 200 and r.content == BLOB
    copied = served.log.read_text().count(COPIED)
    if served.tls:
        assert copied == 0, "TLS on the listener: the body must go through the transport"
    else:
        assert copied >= 4


def test_truncated_upstream_body_is_a_short_read(served: Served) -> None:
    with served.client() as c:
        with pytest.raises(httpx.HTTPError) as err, c.stream("GET", "/v2/a/b/blobs/sha256:short") as r:
            assert r.status_code == 200
            assert r.headers["content-length"] == str(len(BLOB))
            got = b"".join(r.iter_raw())
            pytest.fail(f"read {len(got)} bytes and no error")  # pragma: no cover
        assert isinstance(err.value, httpx.RemoteProtocolError | httpx.ReadError)
    with served.client() as c:  # the gateway goes on serving
        assert c.get("/v2/a/b/blobs/sha256:cl").content == BLOB
    assert "upstream failed while streaming" in served.log.read_text()


def test_client_going_away_drops_the_upstream_connection(served: Served, upstream: Upstream) -> None:
    upstream.closed_early.clear()
    with served.client() as c, c.stream("GET", "/v2/a/b/blobs/sha256:big") as r:
        assert r.headers["content-length"] == str(len(BIG))
        for _ in r.iter_raw(1024 * 1024):
            break  # hang up after the first MiB
    deadline = time.monotonic() + 15
    while not upstream.closed_early.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.closed_early.is_set(), "a half-read upstream connection must be closed, not pooled"
    with served.client() as c:
        assert c.get("/v2/a/b/blobs/sha256:cl").content == BLOB


def test_no_server_errors_logged(served: Served) -> None:
    """Failed and abandoned downloads are logged by the gateway as such, not as server errors."""
    text = served.log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


def test_sigterm_with_a_stalled_download_stops_in_time(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A client that stops reading must not hold the gateway up past --shutdown-timeout."""
    with run_gateway(
        tmp_path_factory.mktemp("gw-stall"),
        upstream=f"http://127.0.0.1:{upstream.port}",
        trust_server="http://127.0.0.1:9",
        ca=None,
        config=None,
        extra=("--shutdown-timeout", "1", "--log-level", "debug"),
    ) as gw:
        host, port = gw.host.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.sendall(b"GET /v2/a/b/blobs/sha256:big HTTP/1.1\r\nHost: gw\r\n\r\n")
            got = 0
            while got < 1024 * 1024:
                got += len(s.recv(65536))
            time.sleep(0.5)  # the copy thread is now blocked on the full socket
            os.kill(gw.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while gw.process.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not gw.process.running(), "the gateway did not stop with a stalled download"
            assert deadline - time.monotonic() > 8, "it took longer than the shutdown timeout allows"
