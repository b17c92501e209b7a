"""The gateway as a pure ASGI app: a streaming reverse proxy that enforces trust on manifests.

Routing is one function (:meth:`GatewayApp._route`): ``/v2/<name>/manifests/<reference>`` of a
trust-enabled repository goes to the trust handlers; every other ``/v2`` request (blobs with ``Range``,
uploads, tags, catalog, the ping, auth challenges) is streamed both ways unchanged, except ``Location``
headers pointing at the upstream, which are rewritten to the address the client used.

Trust handlers (fail closed: no verified answer -> refusal):

* GET/HEAD by tag: the manifest of the *signed* digest, fetched upstream by digest and checked
  against the signed sha256 and length (moving the tag in the registry changes nothing);
* GET/HEAD by digest: only a digest some signed tag resolves to, or (``allow_index_children``) a
  manifest listed in a signed index;
* PUT by tag: only when the trust data already signs that tag as the sha256 of the exact body;
  PUT by digest is content-addressed and passes;
* DELETE: refused while a signed tag (or a signed index) still points at the manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx
from starlette.types import Message, Receive, Scope, Send

from notar import __version__
from notar._lru import LRUCache
from notar.gateway.direct import EXTENSION, BodyMover, ClientSocket, DirectBodyError
from notar.gateway.errors import GatewayError
from notar.gateway.passthrough import BlobPassthrough, UpstreamResponse
from notar.gateway.policy import TrustPolicy
from notar.gateway.trust import TrustVerifier, TrustView
from notar.registry import InvalidDigestError, InvalidReferenceError, validate_digest
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_INDEX_DEPTH,
    MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    json_object,
    manifest_shape,
    media_type_of,
)
from notar.registry.reference import validate_repository, validate_tag

__all__ = ["GatewayApp", "GatewaySettings", "create_app"]

log = logging.getLogger("notar.gateway")

_MANIFEST_PATH: Final = re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]*)/?\Z")
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
# upstream answers to a manifest GET that are relayed as they are: auth challenges and throttling, none of
# which a client takes for a manifest; any other non-200 answer is an upstream failure
_RELAYED_STATUSES: Final = frozenset({401, 403, 429})
_NOT_RELAYED: Final = _HOP_BY_HOP | {b"date"}  # the server sets its own Date
_CHILDREN_CACHE_SIZE: Final = 4096
_ACCEPT_ALL: Final = ", ".join(
    [*ACCEPTED_MANIFEST_TYPES, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, "*/*;q=0.1"]
).encode()
_OCTET_STREAM: Final = "application/octet-stream"


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Knobs of the HTTP layer (the trust verifier and the upstream transport are injected separately)."""

    upstream: str  # http(s)://host:port of the registry behind the gateway
    gun_prefix: str  # GUN = "<gun_prefix>/<repository>": the registry host:port clients type
    policy: TrustPolicy = field(default_factory=TrustPolicy)
    max_manifest_bytes: int = 4 * 1024 * 1024  # distribution's own limit
    upstream_verify: Any = True  # CA bundle path, SSLContext, or bool for an https upstream
    connect_timeout: float = 10.0
    io_timeout: float = 300.0
    # blob GET/HEAD through the lean pass-through (notar.gateway.passthrough) instead of httpx; off when a
    # custom httpx transport is injected (tests), which then serves every request
    fast_blobs: bool = True
    # threads that copy blob GET bodies socket to socket when both connections are plain TCP
    # (notar.gateway.direct); 0 keeps every body on the event loop
    direct_threads: int = 32

    def __post_init__(self) -> None:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, got {self.upstream!r}")
        if not self.gun_prefix or self.gun_prefix.endswith("/"):
            raise ValueError(f"invalid GUN prefix {self.gun_prefix!r}")


@dataclass(frozen=True, slots=True)
class _ManifestRef:
    name: str
    tag: str | None
    digest: str | None

    def show(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag is not None else f"{self.name}@{self.digest}"


@dataclass(frozen=True, slots=True)
class _Fetched:
    data: bytes
    media_type: str


def _tune_upstream_reads(read_bytes: int = 1024 * 1024) -> None:
    """Read upstream bodies 1 MiB at a time instead of httpcore's 64 KiB: ~3.5x the blob throughput.

    httpcore exposes no option for it; the class constant is the only knob (guarded: skipped if it moves).
    """
    try:
        from httpcore._async.http11 import AsyncHTTP11Connection
    except ImportError:  # pragma: no cover - a future httpcore
        return
    if isinstance(getattr(AsyncHTTP11Connection, "READ_NUM_BYTES", None), int):
        AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, read_bytes)


def create_app(
    settings: GatewaySettings,
    *,
    verifier: TrustVerifier,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GatewayApp:
    return GatewayApp(settings, verifier=verifier, transport=transport)


class GatewayApp:
    """The ASGI application (use :func:`create_app`)."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        verifier: TrustVerifier,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.upstream = settings.upstream.rstrip("/")
        _tune_upstream_reads()
        self.http = httpx.AsyncClient(
            transport=transport,
            verify=settings.upstream_verify,
            timeout=httpx.Timeout(settings.io_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            follow_redirects=False,
            trust_env=False,
        )
        # manifest -> all manifests below it
        self._children: LRUCache[str, frozenset[str]] = LRUCache(_CHILDREN_CACHE_SIZE)
        self.blobs: BlobPassthrough | None = None
        if settings.fast_blobs and transport is None:
            self.blobs = BlobPassthrough(
                self.upstream,
                verify=settings.upstream_verify,
                connect_timeout=settings.connect_timeout,
                io_timeout=settings.io_timeout,
            )
        self.mover: BodyMover | None = None
        if self.blobs is not None and settings.direct_threads > 0:
            self.mover = BodyMover(threads=settings.direct_threads, io_timeout=settings.io_timeout)

    # -- ASGI -----------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._route(scope, receive, tracking_send)
        except _ClientGone:
            log.info("client went away during %s %s", scope["method"], scope["path"])
            await _hang_up(scope)
        except GatewayError as e:
            if started:
                log.warning("%s %s failed after the response started: %s", scope["method"], scope["path"], e)
                await _hang_up(scope)
                return
            await _send_error(tracking_send, e, head=scope["method"] == "HEAD")
        except Exception:  # a bug: log it, never show a traceback to the client
            log.exception("unhandled error on %s %s", scope["method"], scope.get("path"))
            if not started:
                await _send_error(
                    tracking_send,
                    GatewayError("UNKNOWN", "internal gateway error"),
                    head=scope["method"] == "HEAD",
                )

    async def aclose(self) -> None:
        if self.blobs is not None:
            self.blobs.close()
        if self.mover is not None:
            self.mover.close()
        await self.http.aclose()
        self.verifier.close()

    # -- routing -----------------------------------------------------------------------------------
    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path != "/v2" and not path.startswith("/v2/"):
            raise GatewayError("NAME_UNKNOWN", f"{path} is not a registry API path")
        segments = path.split("/")[1:]
        if any(s in (".", "..") for s in segments) or "//" in path or any(ord(c) < 0x20 for c in path):
            raise GatewayError("NAME_INVALID", "invalid request path")
        m = _MANIFEST_PATH.match(path)
        if m is None:
            if (
                self.blobs is not None
                and method in ("GET", "HEAD")
                and _BLOB_PATH.match(path)
                and not _has_body(scope)
            ):
                await self._blob(scope, receive, send, self.blobs)
                return
            await self._proxy(scope, receive, send)
            return
        ref = _parse_manifest_ref(m["name"], m["ref"])
        if not self.settings.policy.enabled(ref.name):
            await self._proxy(scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag or ref.digest}")
            return
        gun = f"{self.settings.gun_prefix}/{ref.name}"
        try:
            if method in ("GET", "HEAD"):
                await self._get_manifest(scope, send, ref, gun)
            elif method == "PUT":
                await self._put_manifest(scope, receive, send, ref, gun)
            elif method == "DELETE":
                await self._delete_manifest(scope, receive, send, ref, gun)
            else:
                raise GatewayError("UNSUPPORTED", f"{method} is not supported on manifests")
        except GatewayError as e:
            if e.code not in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "UNSUPPORTED"):
                log.warning("refused %s %s: %s", method, ref.show(), e.message)
            raise

    # -- trust handlers ----------------------------------------------------------------------------------
    async def _get_manifest(self, scope: Scope, send: Send, ref: _ManifestRef, gun: str) -> None:
        view = await self.verifier.view(gun)
        if ref.tag is not None:
            signed = view.tags.get(ref.tag)
            if signed is None:
                # a refusal is decided on data at most a second old, so a tag signed just now is served
                # at once; at most one refresh per second per repository however often it is asked for
                view = await self.verifier.view(gun, max_age=1.0)
                signed = view.tags.get(ref.tag)
            if signed is None:
                raise GatewayError("MANIFEST_UNKNOWN", _no_trust(ref.tag, view), detail={"Tag": ref.tag})
            digest, size = signed.digest, signed.size
        else:
            assert ref.digest is not None
            if not await self._digest_allowed(scope, ref.name, ref.digest, view):
                raise GatewayError(
                    "MANIFEST_UNKNOWN",
                    f"no valid trust data for {ref.digest}: no signed tag of {gun} points at it",
                    detail={"Digest": ref.digest},
                )
            digest, size = ref.digest, None
        fetched = await self._fetch_manifest(scope, ref.name, digest, send=send)
        if fetched is None:
            return  # the upstream's own answer (e.g. an auth challenge) was relayed
        if size is not None and len(fetched.data) != size:
            raise GatewayError(
                "DENIED",
                f"the registry's manifest {digest} is {len(fetched.data)} bytes, the signed size is {size}",
            )
        if not _accepts(scope, fetched.media_type):
            raise GatewayError(
                "MANIFEST_UNKNOWN",
                f"the signed manifest {digest} is a {fetched.media_type}, which the client does not accept",
                detail={"Digest": digest, "MediaType": fetched.media_type},
            )
        headers = [
            (b"content-type", fetched.media_type.encode("latin-1")),
            (b"content-length", str(len(fetched.data)).encode()),
            (b"docker-content-digest", digest.encode()),
            (b"etag", f'"{digest}"'.encode()),
            (b"docker-distribution-api-version", b"registry/2.0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else fetched.data
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _put_manifest(
        self, scope: Scope, receive: Receive, send: Send, ref: _ManifestRef, gun: str
    ) -> None:
        if ref.tag is None:  # by digest: content-addressed, the registry checks the digest
            # no query string: some registries create tags from one (``?tag=``) on a PUT by digest
            await self._proxy(
                scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.digest}", keep_query=False
            )
            return
        body = await _read_body(receive, self.settings.max_manifest_bytes, scope)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        view = await self.verifier.view(gun)
        signed = view.tags.get(ref.tag)
        if signed is None or signed.digest != digest:
            view = await self.verifier.view(gun, fresh=True)  # just signed? do not trust a stale cache
            signed = view.tags.get(ref.tag)
        if signed is None or signed.digest != digest:
            now = f"signed as {signed.digest}" if signed is not None else "not signed"
            raise GatewayError(
                "DENIED",
                f"{gun}:{ref.tag} is {now}, the uploaded manifest is {digest}: push the manifest by digest and "
                f"sign the tag first (`notar sign`), or use `notar push`",
                detail={"Tag": ref.tag, "Digest": digest},
            )
        await self._proxy(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag}", body=body, keep_query=False
        )

    async def _delete_manifest(
        self, scope: Scope, receive: Receive, send: Send, ref: _ManifestRef, gun: str
    ) -> None:
        view = await self.verifier.view(gun, fresh=True)  # deleting: decide on fresh data
        if ref.tag is not None:
            if ref.tag in view.tags:
                raise GatewayError(
                    "DENIED", f"{gun}:{ref.tag} is signed: revoke it first (`notar revoke {gun}:{ref.tag}`)"
                )
        else:
            assert ref.digest is not None
            tags = view.tags_for(ref.digest)
            if tags or await self._digest_allowed(scope, ref.name, ref.digest, view, deleting=True):
                by = f"signed tag(s) {', '.join(tags)}" if tags else "a signed index"
                raise GatewayError(
                    "DENIED",
                    f"{ref.digest} is still referenced by {by} of {gun}: revoke first (`notar revoke`)",
                )
        await self._proxy(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag or ref.digest}", keep_query=False
        )

    async def _digest_allowed(
        self, scope: Scope, name: str, digest: str, view: TrustView, *, deleting: bool = False
    ) -> bool:
        """Whether *digest* is signed, or (``allow_index_children``) below a signed index.

        An index the registry does not return cannot be searched: for a GET that means "no" (fail closed);
        for a DELETE (*deleting*) it is a refusal, since the manifest might belong to it.
        """
        signed = view.digests
        if digest in signed:
            return True
        if not self.settings.policy.allow_index_children:
            return False
        unknown = []
        for parent in sorted(signed):
            below = await self._descendants(scope, name, parent)
            if below is None:
                unknown.append(parent)
            elif digest in below:
                return True
        if unknown and deleting:
            raise GatewayError(
                "DENIED",
                f"cannot tell whether {digest} belongs to the signed index {unknown[0]} of {name} (the registry "
                "did not return it): not deleted",
            )
        return False

    async def _descendants(
        self, scope: Scope, name: str, digest: str, depth: int = 0
    ) -> frozenset[str] | None:
        """The manifests below *digest*: an index's entries and, for nested indexes, theirs (down to
        :data:`~notar.registry.manifest.MAX_INDEX_DEPTH` levels); empty for an image manifest. ``None`` when
        a manifest on the way could not be fetched (not cached, so it is asked again next time). Cached:
        content-addressed."""
        cached = self._children.get(digest)
        if cached is not None:
            return cached
        try:
            fetched = await self._fetch_manifest(scope, name, digest, send=None)
        except GatewayError as e:
            log.info("cannot check index %s of %s: %s", digest, name, e.message)
            return None
        if fetched is None:
            return None
        found: set[str] = set()
        for child, child_type in _index_entries(fetched):
            found.add(child)
            if child_type in INDEX_MEDIA_TYPES and depth + 1 < MAX_INDEX_DEPTH:
                below = await self._descendants(scope, name, child, depth + 1)
                if below is None:
                    return None
                found |= below
        result = frozenset(found)
        self._children.put(digest, result)
        return result

    async def _fetch_manifest(
        self, scope: Scope, name: str, digest: str, *, send: Send | None
    ) -> _Fetched | None:
        """GET the manifest by digest upstream and check its bytes against *digest*.

        A non-200 answer is relayed to the client as is when *send* is given (auth challenges), and
        None returned; a 404 becomes MANIFEST_UNKNOWN.
        """
        headers = [
            (k, v) for k, v in _forward_headers(scope) if k in (b"authorization", b"user-agent", b"cookie")
        ]
        # every manifest type: the bytes are checked against the signed digest, whatever their type
        headers.append((b"accept", _ACCEPT_ALL))
        url = self._url(f"/v2/{name}/manifests/{digest}", b"")
        cap = self.settings.max_manifest_bytes
        async with self._stream("GET", url, headers) as resp:
            if resp.status_code == 404:
                raise GatewayError(
                    "MANIFEST_UNKNOWN", f"the signed manifest {digest} of {name} is not in the registry"
                )
            if resp.status_code != 200:
                if resp.status_code in _RELAYED_STATUSES:
                    if send is not None:
                        await self._relay(scope, send, resp)
                    return None
                raise GatewayError(
                    "UPSTREAM_UNAVAILABLE",
                    f"the registry answered {resp.status_code} for the manifest {digest} of {name}",
                )
            chunks, size = [], 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise GatewayError(
                        "DENIED", f"the registry's manifest {digest} is larger than {cap} bytes"
                    )
                chunks.append(chunk)
        data = b"".join(chunks)
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise GatewayError("DENIED", f"the registry returned {actual} for the signed manifest {digest}")
        return _Fetched(data, _manifest_type(data, resp.headers.get("content-type", "")))

    # -- the streaming proxy ----------------------------------------------------------------------------------
    def _url(self, path: str, query: bytes) -> str:
        url = self.upstream + quote(path, safe="/:@+,;=-._~")
        return url + ("?" + query.decode("latin-1") if query else "")

    def _stream(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: Any = None
    ) -> _Upstream:
        return _Upstream(self.http, self.upstream, method, url, headers, content)

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        path: str | None = None,
        body: bytes | None = None,
        keep_query: bool = True,
    ) -> None:
        method: str = scope["method"]
        headers = _forward_headers(scope)
        content: Any = None
        if body is not None:
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            content = body
        elif _has_body(scope):
            content = _client_body(receive)
        query: bytes = scope.get("query_string", b"") if keep_query else b""
        url = self._url(path if path is not None else scope["path"], query)
        async with self._stream(method, url, headers, content) as resp:
            await self._relay(scope, send, resp)

    async def _relay(self, scope: Scope, send: Send, resp: httpx.Response) -> None:
        """Send the upstream response to the client, streamed, ``Location`` rewritten."""
        base = _client_base(scope)
        headers: list[tuple[bytes, bytes]] = []
        for key, value in resp.headers.raw:
            k = key.lower()
            if k in _NOT_RELAYED:
                continue
            if k == b"location":
                value = self._rewrite_location(value, base)
            headers.append((k, value))
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
        """Blob GET/HEAD: the lean pass-through, relayed like :meth:`_relay` (``Location`` rewritten)."""
        method: str = scope["method"]
        headers = [(k, v) for k, v in _forward_headers(scope) if k in _BLOB_HEADERS]
        target = self._url(scope["path"], scope.get("query_string", b""))[len(self.upstream) :]
        resp = await blobs.request(method, target.encode("latin-1"), headers)
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            base = _client_base(scope)
            out: list[tuple[bytes, bytes]] = []
            for k, value in resp.headers:
                if k in _NOT_RELAYED:
                    continue
                if k == b"location":
                    value = self._rewrite_location(value, base)
                out.append((k, value))
            await send({"type": "http.response.start", "status": resp.status, "headers": out})
            if method == "GET" and await self._direct_body(scope, resp, gone):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            async with contextlib.aclosing(resp.body()) as body:
                async for chunk in body:
                    if gone.done():
                        raise _ClientGone("client disconnected during the download")
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
            raise _ClientGone(f"client went away during the download ({e})") from None
        except BaseException:
            client.abort()
            raise
        resp.direct_done()
        client.sent(len(head) + left)
        log.debug("%s: %d body bytes copied by a thread", scope["path"], len(head) + left)
        return True

    def _rewrite_location(self, value: bytes, base: str) -> bytes:
        text = value.decode("latin-1")
        if text.lower().startswith(self.upstream.lower()):
            rest = text[len(self.upstream) :]
            if not rest or rest.startswith(("/", "?")):
                return (base + rest).encode("latin-1")
        return value


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
        except _ClientGone:
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


class _ClientGone(Exception):
    """The client disconnected while we were reading its request body."""


# -- helpers ------------------------------------------------------------------------------------------------
def _parse_manifest_ref(name: str, ref: str) -> _ManifestRef:
    try:
        validate_repository(name)
    except InvalidReferenceError as e:
        raise GatewayError("NAME_INVALID", str(e)) from e
    if len(name) > 255:
        raise GatewayError("NAME_INVALID", "repository name must be at most 255 characters")
    if ":" in ref:
        try:
            return _ManifestRef(name, None, validate_digest(ref))
        except InvalidDigestError as e:
            raise GatewayError("DIGEST_INVALID", str(e)) from e
    try:
        return _ManifestRef(name, validate_tag(ref), None)
    except InvalidReferenceError as e:
        raise GatewayError("TAG_INVALID", str(e)) from e


def _no_trust(tag: str, view: TrustView) -> str:
    if not view.exists:
        return f"no valid trust data for {tag}: {view.gun} has no trust data"
    return f"no valid trust data for {tag}"


def _index_entries(fetched: _Fetched) -> list[tuple[str, str]]:
    """(digest, media type) of the manifests an index lists; empty for anything else."""
    if fetched.media_type not in INDEX_MEDIA_TYPES:
        return []
    body = json_object(fetched.data)
    entries = body.get("manifests") if body is not None else None
    out = []
    for m in entries if isinstance(entries, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("digest"), str):
            continue
        try:
            child = validate_digest(m["digest"])
        except InvalidDigestError:
            continue
        media_type = m.get("mediaType")
        out.append((child, media_type if isinstance(media_type, str) else ""))
    return out


def _manifest_type(data: bytes, content_type: str) -> str:
    """The media type of verified manifest bytes: their own ``mediaType``, else the registry's header if it
    names a manifest type of the right kind, else what the body's shape says."""
    body = json_object(data)
    if body is None:
        return _OCTET_STREAM
    field = body.get("mediaType")
    if isinstance(field, str) and field:
        return field
    is_index = manifest_shape(body) == MEDIA_TYPE_OCI_INDEX
    header = media_type_of(content_type)
    if header in MANIFEST_MEDIA_TYPES and (header in INDEX_MEDIA_TYPES) == is_index:
        return header
    if is_index:
        return MEDIA_TYPE_OCI_INDEX
    if "config" in body:  # with a manifests list too: an image manifest, as the registry serves it
        return MEDIA_TYPE_OCI_MANIFEST
    return _OCTET_STREAM


def _accepts(scope: Scope, media_type: str) -> bool:
    """Whether the client's ``Accept`` allows *media_type* (no header: anything)."""
    values = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"accept"]
    if not values:
        return True
    wanted = {part.split(";")[0].strip().lower() for v in values for part in v.split(",")}
    wanted.discard("")
    if not wanted:
        return True
    major = media_type.split("/")[0]
    return bool(wanted & {media_type, "*/*", f"{major}/*"})


def _forward_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
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


async def _client_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone("client disconnected during the upload")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _hang_up(scope: Scope) -> None:
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


async def _read_body(receive: Receive, cap: int, scope: Scope | None = None) -> bytes:
    if scope is not None:
        for k, v in scope["headers"]:
            if k.lower() == b"content-length" and v.strip().isdigit() and int(v) > cap:
                raise GatewayError("TOO_LARGE", f"manifests are limited to {cap} bytes")
    chunks, size = [], 0
    async for chunk in _client_body(receive):
        size += len(chunk)
        if size > cap:
            raise GatewayError("TOO_LARGE", f"manifests are limited to {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _send_error(send: Callable[[Message], Awaitable[None]], e: GatewayError, *, head: bool) -> None:
    body = e.body()
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"docker-distribution-api-version", b"registry/2.0"),
    ]
    if e.code == "UNSUPPORTED":
        headers.append((b"allow", b"GET, HEAD, PUT, DELETE"))
    await send({"type": "http.response.start", "status": e.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})
