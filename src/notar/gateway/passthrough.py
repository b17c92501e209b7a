"""A lean HTTP/1.1 client for blob GET/HEAD: upstream bytes straight into the ASGI ``send`` calls.

Blobs are content-addressed and every client checks their digest, so no trust decision depends on the
bytes: they only need to move fast. httpx/httpcore/h11 copy every chunk several times; here a body is
read with one ``recv`` of up to :data:`READ_SIZE` bytes (plain http: a non-blocking socket, no buffering
layer in between) and handed to ``send`` as is. Backpressure is ASGI's own: the next ``recv`` only happens
once ``send`` returned (uvicorn waits for its write buffer to drain).

Framing handled: ``Content-Length``, ``Transfer-Encoding: chunked`` (relayed decoded, the ASGI server
re-frames), close-delimited bodies, and no body (HEAD, 1xx/204/304). Idle connections are kept in a
small pool; a connection is reused only after its response was read to the end, and a reused connection
that fails before the first response byte is retried once on a fresh one (GET/HEAD are idempotent).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from notar.gateway.errors import GatewayError

__all__ = ["READ_SIZE", "BlobPassthrough", "UpstreamResponse"]

READ_SIZE: Final = 1024 * 1024  # measured: 1 MiB beats 256 KiB, 2 MiB and 4 MiB (cache-sized copies)
_MAX_HEAD: Final = 64 * 1024
_HEAD_READ: Final = 64 * 1024
_MAX_IDLE: Final = 16


class _Broken(Exception):
    """The upstream connection failed or the upstream answered something that is not HTTP/1.x."""


class _Conn:
    """One upstream connection: a non-blocking socket (http) or asyncio streams (https)."""

    def __init__(
        self,
        sock: socket.socket | None,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
        io_timeout: float,
    ) -> None:
        self._sock = sock
        self._streams = streams
        self._timeout = io_timeout
        self._pending = b""
        self.reused = False
        self.closed = False

    async def send_all(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                if self._sock is not None:
                    await asyncio.get_running_loop().sock_sendall(self._sock, data)
                else:
                    assert self._streams is not None
                    self._streams[1].write(data)
                    await self._streams[1].drain()
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as e:
            raise _Broken(f"{type(e).__name__}: {e}") from e

    async def recv(self, n: int) -> bytes:
        """Up to *n* bytes (the buffered ones first); ``b""`` at EOF."""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        try:
            sock = self._sock
            if sock is None:
                assert self._streams is not None
                async with asyncio.timeout(self._timeout):
                    return await self._streams[0].read(n)
            while True:
                try:
                    return sock.recv(n)
                except (BlockingIOError, InterruptedError):
                    pass
                await self._readable(sock)
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as e:
            raise _Broken(f"{type(e).__name__}: {e}") from e

    async def _readable(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        fd = sock.fileno()
        loop.add_reader(fd, wake)
        try:
            async with asyncio.timeout(self._timeout):
                await ready
        finally:
            loop.remove_reader(fd)

    def unread(self, data: bytes) -> None:
        self._pending = data + self._pending

    async def read_line(self) -> bytes:
        buf = b""
        while True:
            data = await self.recv(_HEAD_READ)
            if not data:
                raise _Broken("the upstream closed the connection in a chunked body")
            buf += data
            end = buf.find(b"\r\n")
            if end >= 0:
                self.unread(buf[end + 2 :])
                return buf[:end]
            if len(buf) > _MAX_HEAD:
                raise _Broken("chunk header line too long")

    def idle_and_clean(self) -> bool:
        """Nothing waits to be read on the idle connection (no EOF, no stray bytes from a broken answer)."""
        if self._pending:
            return False
        sock = self._sock
        if sock is None:  # TLS: stray bytes are found by the framing checks of the next answer instead
            assert self._streams is not None
            return not self._streams[0].at_eof() and not self._streams[1].transport.is_closing()
        try:
            return not sock.recv(1, socket.MSG_PEEK)  # b"" would be EOF: also not clean
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._sock is not None:
            self._sock.close()
        elif self._streams is not None:
            self._streams[1].transport.abort()


@dataclass(slots=True)
class UpstreamResponse:
    """Status and headers of an upstream answer; :meth:`body` streams it (once)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    _owner: BlobPassthrough
    _conn: _Conn
    _framing: str  # "none" | "length" | "chunked" | "close"
    _length: int
    _reusable: bool
    _done: bool = field(default=False)

    async def body(self, read_size: int = READ_SIZE) -> AsyncGenerator[bytes, None]:
        conn = self._conn
        try:
            if self._framing == "length":
                left = self._length
                while left:
                    data = await conn.recv(min(left, read_size))
                    if not data:
                        raise _Broken(
                            f"the upstream closed the connection with {left} bytes of the body unsent"
                        )
                    left -= len(data)
                    yield data
            elif self._framing == "chunked":
                while True:
                    line = await conn.read_line()
                    try:
                        left = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise _Broken(f"invalid chunk size {line[:40]!r}") from None
                    if left < 0:
                        raise _Broken(f"invalid chunk size {line[:40]!r}")
                    if left == 0:
                        while await conn.read_line():  # trailers, up to the empty line
                            pass
                        break
                    while left:
                        data = await conn.recv(min(left, read_size))
                        if not data:
                            raise _Broken("the upstream closed the connection in a chunked body")
                        left -= len(data)
                        yield data
                    if await conn.read_line():
                        raise _Broken("missing CRLF after a chunk")
            elif self._framing == "close":
                while data := await conn.recv(read_size):
                    yield data
            self._done = True
        except TimeoutError:
            raise GatewayError(
                "UPSTREAM_TIMEOUT", f"the registry {self._owner.upstream} stopped sending the body"
            ) from None
        except _Broken as e:
            raise GatewayError("UPSTREAM_UNAVAILABLE", f"upstream failed while streaming: {e}") from e

    def direct_source(self) -> tuple[socket.socket, bytes, int] | None:
        """For a Content-Length body on a plain socket: (socket, bytes already buffered, bytes still to read).

        The caller copies the body itself (notar.gateway.direct) and then calls :meth:`direct_done`.
        ``None`` when that is not possible (TLS upstream, other framing, the body already in the buffer).
        """
        conn = self._conn
        if self._framing != "length" or conn._sock is None or conn.closed or self._done:
            return None
        head = conn._pending
        if len(head) >= self._length:
            return None
        conn._pending = b""
        return conn._sock, head, self._length - len(head)

    def direct_done(self) -> None:
        """The whole body was read by the caller after :meth:`direct_source`: the connection may be reused."""
        self._done = True

    def release(self) -> None:
        """Back to the pool if the body was read to the end and the upstream keeps it open, else closed."""
        if self._done and self._reusable and not self._conn.closed:
            self._owner._put(self._conn)
        else:
            self._conn.close()


class BlobPassthrough:
    """GET/HEAD against one upstream (``http(s)://host:port``), with a small keep-alive pool."""

    def __init__(
        self,
        upstream: str,
        *,
        verify: Any = True,
        connect_timeout: float = 10.0,
        io_timeout: float = 300.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self._host_header = netloc.encode("idna" if not netloc.isascii() else "ascii")
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            if isinstance(verify, ssl.SSLContext):
                self._ssl = verify
            elif isinstance(verify, str):
                self._ssl = ssl.create_default_context(cafile=verify)
            elif verify:
                self._ssl = ssl.create_default_context()
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._ssl = ctx
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._idle: list[_Conn] = []

    async def request(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> UpstreamResponse:
        """Send the request; returns once the status line and headers are in. Errors -> GatewayError."""
        lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", self._host_header, b"\r\n"]
        for k, v in headers:
            lines += [k, b": ", v, b"\r\n"]
        lines.append(b"\r\n")
        raw = b"".join(lines)
        for attempt in (0, 1):
            conn = self._take() if attempt == 0 else None
            if conn is None:
                conn = await self._connect()
            try:
                return await self._exchange(conn, method, raw)
            except _Stale:
                conn.close()
                continue  # a kept-alive connection the upstream had closed: once more on a fresh one
            except TimeoutError:
                conn.close()
                raise GatewayError(
                    "UPSTREAM_TIMEOUT", f"the registry {self.upstream} did not answer in time"
                ) from None
            except _Broken as e:
                conn.close()
                raise GatewayError(
                    "UPSTREAM_UNAVAILABLE", f"the registry {self.upstream} is unavailable: {e}"
                ) from e
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, conn: _Conn, method: str, raw: bytes) -> UpstreamResponse:
        buf = b""  # set before sending: a reused connection that is already dead fails in send_all
        try:
            await conn.send_all(raw)
            while True:
                data = await conn.recv(_HEAD_READ)
                if not data:
                    raise _Broken("the upstream closed the connection before answering")
                buf += data
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if len(buf) > _MAX_HEAD:
                    raise _Broken("response header too large")
        except _Broken:
            if conn.reused and not buf:
                raise _Stale from None
            raise
        conn.unread(buf[end + 4 :])
        status_line, *header_lines = buf[:end].split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(rest) < 3 or not rest[:3].isdigit():
            raise _Broken(f"not an HTTP/1.x answer: {status_line[:60]!r}")
        status = int(rest[:3])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in header_lines:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise _Broken(f"malformed header line {line[:60]!r}")
            name, value = name.lower(), value.strip()
            headers.append((name, value))
            if name == b"content-length":
                if not value.isdigit() or (length is not None and int(value) != length):
                    raise _Broken(f"invalid Content-Length {value[:30]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                codings = [c.strip() for c in value.lower().split(b",")]
                if codings[-1] != b"chunked":
                    raise _Broken(f"unsupported Transfer-Encoding {value[:40]!r}")
                chunked = True
            elif name == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        if method == "HEAD" or status < 200 or status in (204, 304):
            framing, size = "none", 0
        elif chunked:
            framing, size = "chunked", 0
        elif length is not None:
            framing, size = "length", length
        else:
            framing, size, keep_alive = "close", 0, False
        if status < 200:  # 1xx interim answers are not expected for GET/HEAD: do not reuse
            keep_alive = False
        return UpstreamResponse(status, headers, self, conn, framing, size, keep_alive)

    def _take(self) -> _Conn | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.idle_and_clean():
                conn.close()  # closed by the upstream, or bytes nobody asked for: never reuse
                continue
            conn.reused = True
            return conn
        return None

    def _put(self, conn: _Conn) -> None:
        if conn._pending or len(self._idle) >= _MAX_IDLE:  # unread bytes: the framing was off
            conn.close()
        else:
            self._idle.append(conn)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._ssl is not None:
                    streams = await asyncio.open_connection(
                        self._host, self._port, ssl=self._ssl, limit=READ_SIZE
                    )
                    return _Conn(None, streams, self._io_timeout)
                infos = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
                last: OSError | None = None
                for family, type_, proto, _, addr in infos:
                    sock = socket.socket(family, type_, proto)
                    try:
                        sock.setblocking(False)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        await loop.sock_connect(sock, addr)
                    except OSError as e:
                        sock.close()
                        last = e
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    return _Conn(sock, None, self._io_timeout)
                raise last or OSError(f"no address for {self._host}")
        except TimeoutError:
            raise GatewayError(
                "UPSTREAM_TIMEOUT", f"the registry {self.upstream} did not answer in time"
            ) from None
        except (OSError, ssl.SSLError) as e:
            raise GatewayError(
                "UPSTREAM_UNAVAILABLE",
                f"the registry {self.upstream} is unavailable: {type(e).__name__}: {e}",
            ) from e

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class _Stale(Exception):
    """A reused connection failed before the first response byte."""
