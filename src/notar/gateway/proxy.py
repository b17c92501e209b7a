"""The gateway's streaming proxy: requests relayed to the upstream registry, answers streamed back unchanged.

Everything the gateway passes on without a trust decision goes through :class:`UpstreamProxy`: blobs, uploads,
tags, the catalog, the ping, auth challenges, and the manifest requests that the trust handlers
(:mod:`notar.gateway.manifests`) let through. Bodies are streamed both ways; ``Location`` headers pointing at
the upstream are rewritten to the address the client used; hop-by-hop and proxy headers (``X-Forwarded-*``,
``Forwarded``) are not passed on, so the registry's ``Location`` headers stay rewritable. Blob GET/HEAD take
the lean pass-through (:mod:`notar.gateway.passthrough`), their bodies copied socket to socket by a thread
when both connections allow it (:mod:`notar.gateway.direct`). Transport failures become
``UPSTREAM_UNAVAILABLE`` or ``UPSTREAM_TIMEOUT``; a client that goes away is :class:`ClientGone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final, Protocol
from urllib.parse import quote

import httpx
from starlette.types import Receive, Scope, Send

from notar import __version__
from notar.gateway.direct import EXTENSION, BodyMover, ClientSocket, DirectBodyError
from notar.gateway.errors import GatewayError
from notar.gateway.passthrough import BlobPassthrough, UpstreamResponse

__all__ = ["ClientGone", "Reply", "UpstreamProxy", "client_body", "forward_headers", "hang_up"]

log = logging.getLogger("notar.gateway")

_BLOB_PATH: Final = re.compile(r"/v2/.+/blobs/[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
# what a blob GET/HEAD needs upstream (auth, partial downloads, conditional requests)
_BLOB_HEADERS: Final = frozenset(
    {
        b"authorization",
        b"cookie",
        b"range",
        b"if-range",
        b"if-none-match",
        b"if-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"accept",
        b"accept-encoding",
        b"user-agent",
        b"via",
    }
)
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
# what a proxy in front of the gateway says about the client: not passed on, or the registry would build its
# Location headers for that address and they could not be rewritten to the gateway's (and would name the upstream)
_PROXY_HEADERS: Final = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)
_NOT_RELAYED: Final = _HOP_BY_HOP | {b"date"}  # the server sets its own Date


class ClientGone(Exception):
    """The client disconnected while we were reading its request body or sending a response."""


class UpstreamProxy:
    """The upstream registry at ``upstream`` (``http(s)://host:port``), as the gateway relays to it.

    Requests go through *http*; blob GET/HEAD through *blobs* (the lean pass-through) when there is one,
    their bodies copied by *mover*'s threads when possible. Whoever made them closes them.
    """

    def __init__(
        self,
        upstream: str,
        http: httpx.AsyncClient,
        *,
        blobs: BlobPassthrough | None = None,
        mover: BodyMover | None = None,
    ) -> None:
        self.upstream = upstream
        self.http = http
        self.blobs = blobs
        self.mover = mover

    def url(self, path: str, query: bytes) -> str:
        """The upstream URL of *path* (quoted) and the raw *query* string."""
        url = self.upstream + quote(path, safe="/:@+,;=-._~")
        return url + ("?" + query.decode("latin-1") if query else "")

    def stream(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: Any = None
    ) -> _Upstream:
        """``async with``: the upstream's streamed response to one request."""
        return _Upstream(self.http, self.upstream, method, url, headers, content)

    @contextlib.asynccontextmanager
    async def get(self, path: str, headers: list[tuple[bytes, bytes]]) -> AsyncIterator[Reply]:
        """``async with``: the upstream's answer to a GET of *path* (no query) that the gateway reads itself.

        Through the lean client (:mod:`notar.gateway.passthrough`) when there is one: a manifest read then
        costs one request on a kept-alive connection and no httpx machinery (about a millisecond less per
        request); else through httpx. Errors are :class:`GatewayError` either way.
        """
        url = self.url(path, b"")
        blobs = self.blobs
        if blobs is None:
            async with self.stream("GET", url, headers) as resp:
                yield _HttpxReply(self, resp)
            return
        lean = await blobs.request("GET", url[len(self.upstream) :].encode("latin-1"), headers)
        try:
            yield _LeanReply(self, lean)
        finally:
            lean.release()  # back to the pool only when the body was read to the end

    async def pass_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that needs no trust decision: blob GET/HEAD by the lean path, anything else :meth:`forward`."""
        blobs = self.blobs
        if (
            blobs is not None
            and scope["method"] in ("GET", "HEAD")
            and _BLOB_PATH.match(scope["path"])
            and not _has_body(scope)
        ):
            await self._blob(scope, receive, send, blobs)
            return
        await self.forward(scope, receive, send)

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        path: str | None = None,
        body: bytes | None = None,
        keep_query: bool = True,
    ) -> None:
        """Send the request upstream (to *path*, with *body* if given, else the client's) and relay the answer."""
        method: str = scope["method"]
        headers = forward_headers(scope)
        content: Any = None
        if body is not None:
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            content = body
        elif _has_body(scope):
            content = client_body(receive)
        query: bytes = scope.get("query_string", b"") if keep_query else b""
        url = self.url(path if path is not None else scope["path"], query)
        async with self.stream(method, url, headers, content) as resp:
            await self.relay(scope, send, resp)

    async def relay(self, scope: Scope, send: Send, resp: httpx.Response) -> None:
        """Send the upstream response to the client, streamed, ``Location`` rewritten."""
        headers = self._response_headers(scope, resp.headers.raw)
        await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        try:
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as e:
            # too late for an error body: drop the connection so the client sees a short read
            raise GatewayError("UPSTREAM_UNAVAILABLE", f"upstream failed while streaming: {e}") from e
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _blob(self, scope: Scope, receive: Receive, send: Send, blobs: BlobPassthrough) -> None:
        """Blob GET/HEAD: the lean pass-through, relayed like :meth:`relay` (``Location`` rewritten)."""
        method: str = scope["method"]
        headers = [(k, v) for k, v in forward_headers(scope) if k in _BLOB_HEADERS]
        target = self.url(scope["path"], scope.get("query_string", b""))[len(self.upstream) :]
        resp = await blobs.request(method, target.encode("latin-1"), headers)
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            out = self._response_headers(scope, resp.headers)
            await send({"type": "http.response.start", "status": resp.status, "headers": out})
            if method == "GET" and await self._direct_body(scope, resp, gone):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with contextlib.aclosing(resp.body()) as body:
                async for chunk in body:
                    if gone.done():
                        raise ClientGone("client disconnected during the download")
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            resp.release()

    async def _direct_body(self, scope: Scope, resp: UpstreamResponse, gone: asyncio.Future[None]) -> bool:
        """The body by a copy thread (notar.gateway.direct); ``False`` (nothing sent) when not possible."""
        client = scope.get("extensions", {}).get(EXTENSION)
        mover = self.mover
        if mover is None or not isinstance(client, ClientSocket) or not mover.available():
            return False
        fd = client.fileno()
        if fd is None:
            return False
        source = resp.direct_source()
        if source is None:
            return False
        src, head, left = source
        try:
            await mover.move(src, fd, head, left, gone=gone)
        except DirectBodyError as e:
            client.abort()  # part of the body is out: the client must see a short read
            if e.upstream:
                raise GatewayError("UPSTREAM_UNAVAILABLE", f"upstream failed while streaming: {e}") from None
            raise ClientGone(f"client went away during the download ({e})") from None
        except BaseException:
            client.abort()
            raise
        resp.direct_done()
        client.sent(len(head) + left)
        log.debug("%s: %d body bytes copied by a thread", scope["path"], len(head) + left)
        return True

    def _response_headers(
        self, scope: Scope, headers: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The upstream's response headers as the client gets them: lower case, hop-by-hop and ``Date``
        dropped, ``Location`` rewritten."""
        base = _client_base(scope)
        out: list[tuple[bytes, bytes]] = []
        for key, value in headers:
            k = key.lower()
            if k in _NOT_RELAYED:
                continue
            out.append((k, self._rewrite_location(value, base) if k == b"location" else value))
        return out

    def _rewrite_location(self, value: bytes, base: str) -> bytes:
        text = value.decode("latin-1")
        if text.lower().startswith(self.upstream.lower()):
            rest = text[len(self.upstream) :]
            if not rest or rest.startswith(("/", "?")):
                return (base + rest).encode("latin-1")
        return value


class Reply(Protocol):
    """An upstream answer to :meth:`UpstreamProxy.get`."""

    @property
    def status(self) -> int: ...

    def header(self, name: str) -> str:
        """The value of response header *name* (lower case), ``""`` when absent."""
        ...

    async def read(self, cap: int) -> bytes | None:
        """The whole body, or ``None`` as soon as it exceeds *cap* bytes."""
        ...

    async def relay(self, scope: Scope, send: Send) -> None:
        """Send the answer to the client as it is (``Location`` rewritten)."""
        ...


class _HttpxReply:
    def __init__(self, proxy: UpstreamProxy, resp: httpx.Response) -> None:
        self._proxy = proxy
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status_code

    def header(self, name: str) -> str:
        return str(self._resp.headers.get(name, ""))

    async def read(self, cap: int) -> bytes | None:
        chunks, size = [], 0
        async for chunk in self._resp.aiter_bytes():
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def relay(self, scope: Scope, send: Send) -> None:
        await self._proxy.relay(scope, send, self._resp)


class _LeanReply:
    def __init__(self, proxy: UpstreamProxy, resp: UpstreamResponse) -> None:
        self._proxy = proxy
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status

    def header(self, name: str) -> str:
        key = name.encode("latin-1")
        for k, v in self._resp.headers:
            if k == key:
                return v.decode("latin-1")
        return ""

    async def read(self, cap: int) -> bytes | None:
        chunks, size = [], 0
        async with contextlib.aclosing(self._resp.body()) as body:
            async for chunk in body:
                size += len(chunk)
                if size > cap:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)

    async def relay(self, scope: Scope, send: Send) -> None:
        headers = self._proxy._response_headers(scope, self._resp.headers)
        await send({"type": "http.response.start", "status": self._resp.status, "headers": headers})
        if scope["method"] != "HEAD":
            async with contextlib.aclosing(self._resp.body()) as body:
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Upstream:
    """``async with``: one upstream request sent with a streamed response; transport errors mapped."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        upstream: str,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        content: Any,
    ) -> None:
        self._http = http
        self._upstream = upstream
        self._request = http.build_request(method, url, headers=headers, content=content)
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        try:
            self._response = await self._http.send(self._request, stream=True)
        except httpx.TimeoutException as e:
            raise GatewayError(
                "UPSTREAM_TIMEOUT", f"the registry {self._upstream} did not answer in time"
            ) from e
        except ClientGone:
            raise
        except httpx.HTTPError as e:
            raise GatewayError(
                "UPSTREAM_UNAVAILABLE",
                f"the registry {self._upstream} is unavailable: {type(e).__name__}: {e}",
            ) from e
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()


# -- the client's side of a request -------------------------------------------------------------------------
def forward_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The client's request headers as the upstream gets them: lower case, hop-by-hop and proxy headers
    dropped, our ``Via`` added."""
    out = [
        (k.lower(), v)
        for k, v in scope["headers"]
        if k.lower() not in _HOP_BY_HOP and k.lower() not in _PROXY_HEADERS
    ]
    out.append((b"via", f"1.1 notar-gateway/{__version__}".encode()))
    return out


def _has_body(scope: Scope) -> bool:
    for k, v in scope["headers"]:
        key = k.lower()
        if key == b"content-length" and v.strip() not in (b"", b"0"):
            return True
        if key == b"transfer-encoding":
            return True
    return False


def _client_base(scope: Scope) -> str:
    scheme = scope.get("scheme", "http")
    for k, v in scope["headers"]:
        if k.lower() == b"host":
            return f"{scheme}://{v.decode('latin-1')}"
    server = scope.get("server") or ("127.0.0.1", 80)
    return f"{scheme}://{server[0]}:{server[1]}"


async def client_body(receive: Receive) -> AsyncIterator[bytes]:
    """The client's request body, chunk by chunk; :class:`ClientGone` if it disconnects first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("client disconnected during the upload")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def hang_up(scope: Scope) -> None:
    """Drop the client connection of a response that cannot be completed (the client sees a short read).

    Done here rather than left to the server, which would log an error about an incomplete response.
    """
    client = scope.get("extensions", {}).get(EXTENSION)
    if isinstance(client, ClientSocket):
        client.abort()
        for _ in range(20):  # a few loop turns (more behind TLS) until the server has seen it
            if client.disconnected:
                break
            await asyncio.sleep(0)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client is gone (a request without a body: every message after the first)."""
    while (await receive())["type"] != "http.disconnect":
        pass
