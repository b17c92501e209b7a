"""The HTTP client a :class:`~notar.client.TrustServer` makes for itself: the standard library's
:mod:`http.client` (ADR 0011).

A trust server is one origin, spoken to with a handful of plain HTTP/1.1 requests; importing httpx and
httpcore for that cost ~65 ms of CPU at every ``notar resolve`` / ``notar inspect`` (docs/benchmarks.md, "CLI
start-up"). This module is only the wire: the size caps, error messages and status handling stay in
:class:`~notar.client.TrustServer`, which reads a response through the small part of httpx's interface that
both clients share (:class:`Response`), so an injected ``httpx.Client`` (tests, the gateway) is used the same
way.

What it does as the httpx client it replaces did (``trust_env=False``, no redirects):

* TLS: ``verify`` is ``True`` (certifi's CA bundle, as httpx), ``False``, a CA file or directory, or an
  ``ssl.SSLContext``; the context is made when the client is (a bad CA file fails there, as before), and only
  for an https URL; HTTP/1.1 is offered by ALPN, as httpcore does.
* No proxies from the environment, no redirects followed, no cookies, no content decoding (identity is
  asked for), ``timeout`` seconds for the connection and for each read.
* Bounds httpx's h11 had and :mod:`http.client` lacks: at most :data:`MAX_RESPONSE_BYTES` are read from the
  socket for one answer, status line, ``100 Continue`` answers, headers, body and chunked trailers together
  (http.client reads trailers and interim answers without end), and the whole answer must arrive within
  :data:`DEADLINE_FACTOR` times ``timeout`` (a server sending one byte just before each read times out is
  cut off then, not only when it pauses longer than ``timeout``).
* Connections are kept alive and reused (one pool per origin, any number of threads); an idle connection
  the server has closed meanwhile is dropped before it is reused, so no request is ever sent twice.
* Every failure to connect, send or read is a :class:`TransportError` with the underlying reason as its text.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

__all__ = ["Client", "Response", "TransportError", "ssl_context"]

_CHUNK = 64 * 1024
#: Bytes read from the socket for one answer, everything included: the largest metadata file a Go client
#: downloads (100 MiB) and 1 MiB for the rest.
MAX_RESPONSE_BYTES = 101 * 1024 * 1024
#: A whole answer must arrive within this many times the per-read timeout.
DEADLINE_FACTOR = 10
_PROTOCOL_ERRORS = (OSError, http.client.HTTPException, ValueError)  # ValueError: e.g. a negative chunk size


class _Counted:
    """The socket file of one answer, counting what is read through it (see :data:`MAX_RESPONSE_BYTES`)."""

    def __init__(self, fp: Any, limit: int) -> None:
        self._fp = fp
        self._left = limit

    def _take(self, n: int) -> None:
        self._left -= n
        if self._left < 0:
            raise http.client.HTTPException(f"the answer is longer than {MAX_RESPONSE_BYTES} bytes")

    def read(self, n: int | None = -1) -> bytes:
        data: bytes = self._fp.read(n)
        self._take(len(data))
        return data

    def read1(self, n: int = -1) -> bytes:
        data: bytes = self._fp.read1(n)
        self._take(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        n: int = self._fp.readinto(buffer)
        self._take(n or 0)
        return n

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)
        self._take(len(line))
        return line

    def __getattr__(self, name: str) -> Any:  # peek, close, closed, flush, ...
        return getattr(self._fp, name)


class _BoundedResponse(http.client.HTTPResponse):
    """An :class:`http.client.HTTPResponse` whose socket file counts what it reads."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = _Counted(self.fp, MAX_RESPONSE_BYTES)  # type: ignore[assignment]


class _Watchdog:
    """Shuts the connection's socket down when its answer has not arrived whole within *seconds*."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.expired = False
        self.seconds = seconds
        self._conn = conn
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


class TransportError(Exception):
    """The request could not be sent or its answer not be read (connection, TLS, timeout, protocol)."""


class Headers(Protocol):
    def get(self, key: str, default: None = None) -> str | None: ...


class Response(Protocol):
    """What :class:`~notar.client.TrustServer` reads of an answer (a subset of ``httpx.Response``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Headers: ...

    @property
    def content(self) -> bytes: ...

    def read(self) -> bytes: ...

    def iter_bytes(self) -> Iterator[bytes]: ...


def ssl_context(verify: bool | str | os.PathLike[str] | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for *verify*, as httpx makes it without the environment (``trust_env=False``)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = Path(verify)
    if path.is_dir():
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


class _Answer:
    """One response of :class:`Client`; the connection goes back to the pool once the body is read."""

    def __init__(self, response: http.client.HTTPResponse, release: _Release, watchdog: _Watchdog) -> None:
        self._response = response
        self._release = release
        self._watchdog = watchdog
        self._content: bytes | None = None
        self.status_code = response.status
        self.headers: Headers = response.headers

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the response body has not been read")
        return self._content

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def iter_bytes(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read(_CHUNK):
                yield chunk
        except _PROTOCOL_ERRORS as e:
            self.close(reuse=False)
            raise TransportError(_reason(e, self._watchdog)) from e
        if self._watchdog.expired:  # cut off while the last bytes came in: not a whole answer
            self.close(reuse=False)
            raise TransportError(_reason(TimeoutError(), self._watchdog))
        self.close(reuse=True)

    def close(self, *, reuse: bool = False) -> None:
        self._watchdog.cancel()
        release, self._release = self._release, _released
        release(reuse and not self._response.will_close and not self._watchdog.expired)


class _Release(Protocol):
    def __call__(self, reuse: bool) -> None: ...


def _released(reuse: bool) -> None:
    """A response already given back."""


def _reason(e: BaseException, watchdog: _Watchdog | None = None) -> str:
    if watchdog is not None and watchdog.expired:
        return f"timed out: no complete answer within {watchdog.seconds:g} s"
    if isinstance(e, TimeoutError):
        return str(e) or "timed out"
    if isinstance(e, http.client.RemoteDisconnected):
        return "Server disconnected without sending a response."  # httpx's words
    if isinstance(e, http.client.BadStatusLine):
        return f"illegal status line: {str(e).strip()[:200]!r}"
    return str(e) or type(e).__name__


class Client:
    """HTTP/1.1 to the origins of the URLs it is given, with ``headers`` sent on every request."""

    def __init__(
        self,
        *,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext,
        timeout: float,
        headers: Mapping[str, str],
        https: bool,
    ) -> None:
        """*https*: whether a TLS context is needed (made now, so that a bad CA file fails here)."""
        self.timeout = timeout
        self._headers = {"Accept-Encoding": "identity", **headers}
        self._verify = verify
        self._context = _with_alpn(ssl_context(verify)) if https else None
        self._idle: dict[tuple[str, str, int | None], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for conn in connections:
                conn.close()

    # -- requests ----------------------------------------------------------------------------------------
    def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Send and read the whole answer."""
        answer = self._send(method, url, content, headers)
        answer.read()
        return answer

    @contextlib.contextmanager
    def stream(self, method: str, url: str) -> Iterator[Response]:
        """Send; the body is read by the caller (``iter_bytes``) inside the ``with``."""
        answer = self._send(method, url, None, None)
        try:
            yield answer
        finally:
            answer.close()

    def _send(
        self, method: str, url: str, content: bytes | None, headers: Mapping[str, str] | None
    ) -> _Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"unsupported URL {url!r}")
        try:
            port = parts.port
        except ValueError as e:
            raise TransportError(f"bad port in {url!r}") from e
        key = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(key)
        watchdog = _Watchdog(conn, self.timeout * DEADLINE_FACTOR)
        try:
            conn.request(method, target, body=content, headers={**self._headers, **(headers or {})})
            response = conn.getresponse()
        except _PROTOCOL_ERRORS as e:
            watchdog.cancel()
            conn.close()
            raise TransportError(_reason(e, watchdog)) from e

        def release(reuse: bool) -> None:
            if reuse:
                with self._lock:
                    if not self._closed:
                        self._idle.setdefault(key, []).append(conn)
                        return
            conn.close()

        return _Answer(response, release, watchdog)

    def _connection(self, key: tuple[str, str, int | None]) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                if _usable(conn):
                    return conn
                conn.close()
        scheme, host, port = key
        fresh: http.client.HTTPConnection
        if scheme == "http":
            fresh = http.client.HTTPConnection(host, port, timeout=self.timeout)
        else:
            if self._context is None:
                self._context = _with_alpn(ssl_context(self._verify))
            fresh = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context)
        fresh.response_class = _BoundedResponse
        return fresh


def _with_alpn(context: ssl.SSLContext) -> ssl.SSLContext:
    """Offer HTTP/1.1 by ALPN, as httpcore does on every TLS connection (on the context it is given, too)."""
    context.set_alpn_protocols(["http/1.1"])
    return context


def _usable(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection is usable if the server has sent nothing on it (no close, no data)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
