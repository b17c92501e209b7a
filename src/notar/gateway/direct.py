"""Blob bodies moved socket to socket by a worker thread, outside the event loop.

Measured on loopback (bench/gateway_bench.py): relaying a 200 MB layer chunk by chunk through the event loop
costs two readiness registrations, a wake-up and a buffered write per chunk and reached ~0.70-0.76 of the
registry's own throughput. A thread that blocks in ``recv_into``/``send`` on the two sockets (the GIL is
released in both) moves the same bytes with one preallocated buffer and no loop round trips, at ~0.9-1.0.

The path is taken only when it is safe and simple: a plain-TCP client connection (no TLS on the listener)
whose write buffer is empty once the response head is out, a plain-TCP upstream connection, and a body with a
``Content-Length``. Anything else (TLS either side, chunked bodies, all threads busy) stays on the event loop.

The ASGI server's side: :class:`ClientSocket` is put in the request scope (``scope["extensions"][EXTENSION]``)
by the gateway's HTTP protocol (notar.gateway.runtime). It hands out the client socket while the response is
in flight and tells the server how many body bytes went out directly, so that its Content-Length accounting
and keep-alive handling stay right.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Final, Protocol

__all__ = ["EXTENSION", "BodyMover", "ClientSocket", "DirectBodyError"]

EXTENSION: Final = "notar.client_socket"
_CHUNK: Final = 1024 * 1024  # same as the loop path (notar.gateway.passthrough.READ_SIZE)
_SLICE: Final = 1.0  # seconds a blocking call waits before the thread looks at its stop flag


class DirectBodyError(Exception):
    """The direct copy failed; ``upstream`` tells which side broke (the client connection is aborted)."""

    def __init__(self, message: str, *, upstream: bool) -> None:
        super().__init__(message)
        self.upstream = upstream


class _Cycle(Protocol):  # the part of uvicorn's RequestResponseCycle this module touches
    expected_content_length: int
    disconnected: bool


class ClientSocket:
    """The client connection of one request, for a direct body (see the module docstring)."""

    def __init__(self, transport: asyncio.Transport, cycle: _Cycle) -> None:
        self._transport = transport
        self._cycle = cycle

    def fileno(self) -> int | None:
        """The socket's descriptor when bytes may be written to it directly now, else ``None``."""
        t = self._transport
        if t.is_closing() or t.get_write_buffer_size():
            return None
        if t.get_extra_info("sslcontext") is not None or t.get_extra_info("ssl_object") is not None:
            return None  # TLS: the bytes must go through the transport's encryption
        sock = t.get_extra_info("socket")
        if sock is None or sock.type != socket.SOCK_STREAM:
            return None
        fd = sock.fileno()
        return fd if fd >= 0 else None

    def sent(self, n: int) -> None:
        """*n* body bytes went out around the server (its Content-Length accounting)."""
        self._cycle.expected_content_length -= n

    def abort(self) -> None:
        """Drop the connection: the client saw part of a body and must see a short read, not a hang."""
        self._transport.abort()

    @property
    def disconnected(self) -> bool:
        """The server has seen the connection close."""
        return bool(self._cycle.disconnected)


class BodyMover:
    """A bounded pool of copy threads; :meth:`move` returns ``False`` (nothing done) when all are busy."""

    def __init__(self, *, threads: int = 32, io_timeout: float = 300.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="notar-blob")
        self._free = threads
        self._io_timeout = io_timeout
        self._closed = False
        self._active: set[threading.Event] = set()

    def available(self) -> bool:
        return not self._closed and self._free > 0

    async def move(
        self,
        src: socket.socket,
        dst_fd: int,
        head: bytes,
        left: int,
        *,
        gone: asyncio.Future[None] | None = None,
    ) -> None:
        """Write *head*, then copy exactly *left* bytes from *src* to the socket *dst_fd*.

        Raises :class:`DirectBodyError` on a short upstream body, an I/O error or a timeout on either side.
        Cancellation (or *gone* completing) stops the thread within about a second; this returns after it did,
        so the caller may close or reuse *src* right away.
        """
        if not self.available():
            raise RuntimeError("no copy thread available")
        stop = threading.Event()
        dst = socket.socket(fileno=os.dup(dst_fd))
        self._free -= 1
        self._active.add(stop)
        loop = asyncio.get_running_loop()
        try:
            job = loop.run_in_executor(self._pool, _copy, src, dst, head, left, self._io_timeout, stop)
            if gone is not None:
                gone.add_done_callback(lambda _: stop.set())
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                stop.set()
                with contextlib.suppress(BaseException):
                    await job
                raise
        finally:
            self._active.discard(stop)
            self._free += 1
            dst.close()  # the duplicate only; the server owns the connection
            src.setblocking(False)  # back to the event loop's mode

    def close(self) -> None:
        """No new copies; running ones stop within about a second (their clients see a short read)."""
        self._closed = True
        for stop in list(self._active):
            stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _copy(
    src: socket.socket, dst: socket.socket, head: bytes, left: int, io_timeout: float, stop: threading.Event
) -> None:
    """The thread's work: blocking calls in slices of :data:`_SLICE`, idle time bounded by *io_timeout*."""
    src.settimeout(_SLICE)
    dst.settimeout(_SLICE)
    buf = bytearray(min(_CHUNK, max(left, 1)))
    view = memoryview(buf)
    _send(dst, memoryview(head), io_timeout, stop)
    while left:
        idle_since = time.monotonic()
        while True:
            if stop.is_set():
                raise DirectBodyError("stopped", upstream=False)
            try:
                n = src.recv_into(buf, min(left, len(buf)))
                break
            except TimeoutError:
                if time.monotonic() - idle_since > io_timeout:
                    raise DirectBodyError("the registry stopped sending the body", upstream=True) from None
            except OSError as e:
                raise DirectBodyError(f"upstream: {type(e).__name__}: {e}", upstream=True) from e
        if not n:
            raise DirectBodyError(
                f"the registry closed the connection with {left} bytes of the body unsent", upstream=True
            )
        _send(dst, view[:n], io_timeout, stop)
        left -= n


def _send(dst: socket.socket, data: memoryview, io_timeout: float, stop: threading.Event) -> None:
    off, idle_since = 0, time.monotonic()
    while off < len(data):
        if stop.is_set():
            raise DirectBodyError("stopped", upstream=False)
        try:
            off += dst.send(data[off:])
            idle_since = time.monotonic()
        except TimeoutError:
            if time.monotonic() - idle_since > io_timeout:
                raise DirectBodyError("the client stopped reading", upstream=False) from None
        except OSError as e:
            raise DirectBodyError(f"client: {type(e).__name__}: {e}", upstream=False) from e
