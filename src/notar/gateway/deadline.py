"""One deadline for all the HTTP requests of a trust check (``--trust-timeout``).

httpx applies its timeouts to each connect, read and write: a trust server that drips a byte a second never
trips them, and one TUF update (root, timestamp, snapshot, targets, delegations) makes several requests. The
gateway's trust server client therefore goes through :class:`DeadlineTransport`: while a :class:`Deadline` is
active in the calling context (:meth:`Deadline.active`, set by the worker thread that runs the update), every
network operation -- connect, TLS handshake, each read and each write, waiting for a pooled connection -- gets
at most the time left, and none starts once it has passed: the update fails with a timeout (and its
connection is closed) within about the deadline, whatever the server sends. Outside a deadline the transport
behaves like httpx's own (HTTP/1.1, no proxies, nothing from the environment).

Not bounded: name resolution (``getaddrinfo`` has no timeout; a trust server given by IP address, or a
working resolver, is assumed) and CPU time between network operations.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore
import httpx

from notar import __version__
from notar.client import TrustServer

__all__ = ["Deadline", "DeadlineTransport", "trust_server"]

T = TypeVar("T")

_ACTIVE: ContextVar[Deadline | None] = ContextVar("notar_gateway_trust_deadline", default=None)


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment (``time.monotonic()``) by which a trust check must be done, and its length for messages."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def message(self) -> str:
        return f"the trust check did not finish within {self.seconds:g} s"

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Bound the network operations of :class:`DeadlineTransport` in this context (thread) by it."""
        token = _ACTIVE.set(self)
        try:
            yield
        finally:
            _ACTIVE.reset(token)


def _bounded(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """*timeout* cut to the time left before the active deadline; *error* when none is left."""
    deadline = _ACTIVE.get()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        raise error(deadline.message)
    return left if timeout is None else min(timeout, left)


def _within(
    timeout: float | None, error: type[httpcore.TimeoutException], operation: Callable[[float | None], T]
) -> T:
    """Run *operation* with its timeout cut to the active deadline; a timeout at the deadline says so."""
    try:
        return operation(_bounded(timeout, error))
    except httpcore.TimeoutException as e:
        deadline = _ACTIVE.get()
        if deadline is not None and deadline.remaining() <= 0:
            raise error(deadline.message) from e
        raise


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _within(timeout, httpcore.ReadTimeout, lambda t: self._inner.read(max_bytes, t))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _within(timeout, httpcore.WriteTimeout, lambda t: self._inner.write(buffer, t))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            _within(
                timeout,
                httpcore.ConnectTimeout,
                lambda t: self._inner.start_tls(ssl_context, server_hostname, t),
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            _within(
                timeout,
                httpcore.ConnectTimeout,
                lambda t: self._inner.connect_tcp(host, port, t, local_address, socket_options),
            )
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            _within(
                timeout,
                httpcore.ConnectTimeout,
                lambda t: self._inner.connect_unix_socket(path, t, socket_options),
            )
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's exceptions as httpx's (what httpx's own transport does), most specific first
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as e:
        for core, mapped in _ERRORS:
            if isinstance(e, core):
                raise mapped(str(e)) from e
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class DeadlineTransport(httpx.BaseTransport):
    """httpx transport (HTTP/1.1, TLS checked with *verify*, no proxies) bound by the active deadline."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("DeadlineTransport needs a synchronous request body")
        extensions = dict(request.extensions)
        timeouts = dict(extensions.get("timeout") or {})
        with _httpx_errors():
            # waiting for a pooled connection counts too
            timeouts["pool"] = _bounded(timeouts.get("pool"), httpcore.PoolTimeout)
            extensions["timeout"] = timeouts
            response = self._pool.handle_request(
                httpcore.Request(
                    method=request.method,
                    url=httpcore.URL(
                        scheme=request.url.raw_scheme,
                        host=request.url.raw_host,
                        port=request.url.port,
                        target=request.url.raw_path,
                    ),
                    headers=request.headers.raw,
                    content=request.stream,
                    extensions=extensions,
                )
            )
        if not isinstance(response.stream, Iterable):
            raise TypeError("httpcore returned an asynchronous body to a synchronous request")
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def trust_server(url: str, *, verify: ssl.SSLContext | bool = True, timeout: float = 30.0) -> TrustServer:
    """A :class:`TrustServer` whose requests respect the active :class:`Deadline` (*timeout*: each operation's
    own limit, as :class:`TrustServer` sets it)."""
    http = httpx.Client(
        transport=DeadlineTransport(verify=verify),
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": f"notar/{__version__}"},
        trust_env=False,
    )
    return TrustServer(url, http=http)
