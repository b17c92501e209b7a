"""The lean blob pass-through (notar.gateway.passthrough) against a scripted raw-socket upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from notar.gateway import GatewaySettings, create_app
from notar.gateway.app import GatewayApp
from tests.gateway.test_inprocess import FixedVerifier
from tests.lab import free_port

BLOB = bytes(range(256)) * 4096 * 3  # 3 MiB: several reads
BIG = b"x" * (32 * 1024 * 1024)


class Upstream:
    """A tiny HTTP/1.1 server: one canned answer per blob name, Range honoured, keep-alive."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_early = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    if self.requests and b":big " in self.requests[-1]:
                        self.closed_early.set()  # EOF right after the big answer
                    return
                self.requests.append(head)
                if not await self.answer(head, writer):
                    return
        except ConnectionError:
            self.closed_early.set()
        finally:
            writer.close()

    async def answer(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        method, target, _ = head.split(b"\r\n")[0].split(b" ")
        headers = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
        )
        name = target.rsplit(b":", 1)[-1]
        send_body = method == b"GET"
        if name == b"cl":
            body, status = BLOB, b"200 OK"
            if b"range" in headers:
                lo, hi = (int(x) for x in headers[b"range"].split(b"=")[1].split(b"-"))
                body, status = BLOB[lo : hi + 1], b"206 Partial Content"
            writer.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n" % (status, len(body)))
            writer.write(body if send_body else b"")
        elif name == b"chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            if send_body:
                for i in range(0, len(BLOB), 700_001):
                    part = BLOB[i : i + 700_001]
                    writer.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
        elif name == b"close":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + (BLOB if send_body else b""))
            await writer.drain()
            return False
        elif name == b"auth":
            body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'
            writer.write(
                b'HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer realm="r"\r\n'
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body if send_body else b"")
            )
        elif name == b"redirect":
            writer.write(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/v2/a/b/blobs/sha256:cl\r\n"
                b"Content-Length: 0\r\n\r\n" % self.port
            )
        elif name == b"headbody":  # a broken registry: another answer nobody asked for, after a HEAD
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB))
            await writer.drain()
            await asyncio.sleep(0.2)  # the stray bytes arrive after the gateway pooled the connection
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
        elif name == b"short":  # announces the whole blob, sends half of it, hangs up
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BLOB))
            writer.write(BLOB[: len(BLOB) // 2] if send_body else b"")
            await writer.drain()
            return not send_body
        elif name == b"big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG))
            writer.write(BIG)  # the gateway must drop the connection rather than pool a half-read one
        else:
            body = b'{"errors":[{"code":"BLOB_UNKNOWN"}]}'
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        return True


async def _call(
    app: GatewayApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    gone_after: int = 0,
) -> tuple[int, dict[bytes, bytes], bytes]:
    messages: list[dict[str, Any]] = []
    first = True
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if gone_after and sum(len(m.get("body", b"")) for m in messages) >= gone_after:
            gone.set()
        await asyncio.sleep(0)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"gw:5001"), *(headers or [])],
        "scheme": "http",
        "server": ("gw", 5001),
    }
    await app(scope, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in messages[1:])


def _run(test: Callable[[Upstream, GatewayApp], Awaitable[None]]) -> None:
    async def main() -> None:
        upstream = Upstream()
        await upstream.start()
        settings = GatewaySettings(upstream=f"http://127.0.0.1:{upstream.port}", gun_prefix="gw:5001")
        app = create_app(settings, verifier=FixedVerifier({}))
        assert app.blobs is not None
        try:
            await test(upstream, app)
        finally:
            await app.aclose()
            assert upstream.server is not None
            upstream.server.close()

    asyncio.run(main())


def test_content_length_range_head_and_keep_alive() -> None:
    async def test(up: Upstream, app: GatewayApp) -> None:
        status, headers, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:cl")
        assert status == 200 and body == BLOB and headers[b"content-length"] == str(len(BLOB)).encode()
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:cl", [(b"range", b"bytes=1000-1999")])
        assert status == 206 and body == BLOB[1000:2000]
        status, headers, body = await _call(app, "HEAD", "/v2/a/b/blobs/sha256:cl")
        assert status == 200 and body == b"" and int(headers[b"content-length"]) == len(BLOB)
        assert up.connections == 1  # one kept-alive upstream connection for all three
        assert b"range: bytes=1000-1999" in up.requests[1].lower()
        assert b"host: 127.0.0.1:" in up.requests[0].lower()

    _run(test)


def test_chunked_and_close_delimited_upstream_bodies() -> None:
    async def test(up: Upstream, app: GatewayApp) -> None:
        status, headers, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:chunked")
        assert status == 200 and body == BLOB and b"transfer-encoding" not in headers
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:close")
        assert status == 200 and body == BLOB
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:cl")  # after close: a new connection
        assert status == 200 and body == BLOB

    _run(test)


def test_errors_and_redirects_are_relayed() -> None:
    async def test(up: Upstream, app: GatewayApp) -> None:
        status, headers, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:auth")
        assert status == 401 and headers[b"www-authenticate"] == b'Bearer realm="r"'
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:nothere")
        assert status == 404 and b"BLOB_UNKNOWN" in body
        status, headers, _ = await _call(app, "GET", "/v2/a/b/blobs/sha256:redirect")
        assert status == 307 and headers[b"location"] == b"http://gw:5001/v2/a/b/blobs/sha256:cl"

    _run(test)


def test_client_disconnect_drops_the_upstream_connection() -> None:
    async def test(up: Upstream, app: GatewayApp) -> None:
        assert app.blobs is not None
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:big", gone_after=2 * 1024 * 1024)
        assert status == 200 and len(body) < len(BIG)
        assert app.blobs._idle == []  # not pooled: its body was not read to the end
        await asyncio.wait_for(up.closed_early.wait(), 10)
        status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:cl")
        assert status == 200 and body == BLOB

    _run(test)


def test_upstream_down_is_a_clear_502() -> None:
    async def main() -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        app = create_app(GatewaySettings(upstream=dead, gun_prefix="gw:5001"), verifier=FixedVerifier({}))
        try:
            for method in ("GET", "HEAD"):
                status, _, body = await _call(app, method, "/v2/a/b/blobs/sha256:" + "0" * 64)
                assert status == 502
                if method == "GET":
                    err = json.loads(body)["errors"][0]
                    assert err["code"] == "UPSTREAM_UNAVAILABLE" and dead in err["message"]
        finally:
            await app.aclose()

    asyncio.run(main())


def test_stray_bytes_on_an_idle_connection_are_never_read_as_an_answer() -> None:
    async def test(up: Upstream, app: GatewayApp) -> None:
        status, _, body = await _call(app, "HEAD", "/v2/a/b/blobs/sha256:headbody")
        assert status == 200 and body == b""
        await asyncio.sleep(0.5)
        for _ in range(2):
            status, _, body = await _call(app, "GET", "/v2/a/b/blobs/sha256:cl")
            assert status == 200 and body == BLOB

    _run(test)


def test_a_dead_reused_connection_is_retried_not_a_500() -> None:
    """A reused keep-alive connection that fails while sending is stale: the caller retries on a new one."""
    import asyncio

    import pytest

    from notar.gateway.passthrough import BlobPassthrough, _Broken, _Conn, _Stale

    class DeadConn(_Conn):
        def __init__(self) -> None:
            super().__init__(None, None, 1.0)
            self.reused = True

        async def send_all(self, data: bytes) -> None:
            raise _Broken("BrokenPipeError: [Errno 32] Broken pipe")

    proxy = BlobPassthrough("http://127.0.0.1:9")
    with pytest.raises(_Stale):
        asyncio.run(proxy._exchange(DeadConn(), "GET", b"GET / HTTP/1.1\r\n\r\n"))
