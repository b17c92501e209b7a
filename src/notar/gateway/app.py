"""The gateway as a pure ASGI app: a streaming reverse proxy that enforces trust on manifests.

Routing is one function (:meth:`GatewayApp._route`): ``/v2/<name>/manifests/<reference>`` of a
trust-enabled repository goes to the trust handlers (:class:`~notar.gateway.manifests.ManifestGuard`);
a blob DELETE in a trust-enabled repository is refused (the blob may belong to a signed image or to
another signer's signature: the registry's garbage collection removes what nothing references); every
other ``/v2`` request (the referrers API included) (blobs with ``Range``, uploads, tags, catalog, the ping, auth challenges) is
streamed both ways unchanged by the proxy (:class:`~notar.gateway.proxy.UpstreamProxy`), except
``Location`` headers pointing at the upstream, which are rewritten to the address the client used. Errors
are answered here, in the docker error envelope, as long as the response has not started.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from starlette.types import Message, Receive, Scope, Send

from notar.gateway.direct import BodyMover
from notar.gateway.errors import GatewayError
from notar.gateway.formats import Requirements
from notar.gateway.manifests import ManifestGuard, parse_manifest_ref
from notar.gateway.passthrough import BlobPassthrough
from notar.gateway.policy import TrustPolicy
from notar.gateway.proxy import ClientGone, UpstreamProxy, hang_up
from notar.gateway.signatures import SignatureVerifier, UpstreamReads
from notar.gateway.trust import TrustVerifier
from notar.signing.verification import NotationTrust

__all__ = ["GatewayApp", "GatewaySettings", "create_app"]

log = logging.getLogger("notar.gateway")

_MANIFEST_PATH: Final = re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]*)/?\Z")
_BLOB_PATH: Final = re.compile(
    r"/v2/(?P<name>.+)/blobs/(?P<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)/?\Z"
)


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
    # which formats each repository's pulls need (default: v1 everywhere), and the trust policy + store
    # Notation signatures are verified with (cosign keys are in the requirements)
    requirements: Requirements | None = None
    notation: NotationTrust | None = None

    def __post_init__(self) -> None:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, got {self.upstream!r}")
        if not self.gun_prefix or self.gun_prefix.endswith("/"):
            raise ValueError(f"invalid GUN prefix {self.gun_prefix!r}")


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


def _no_sniffio_lookups() -> None:
    """Let httpcore find out once that ``sniffio`` is not installed, instead of on every request.

    httpcore imports ``sniffio`` inside the function it calls several times per async request; anyio 4 no
    longer depends on it, and an import that fails is not remembered, so each call searched ``sys.path``
    again: ~10% of the gateway's CPU on a manifest read through httpx (py-spy). Marking the module absent
    makes that import fail at once, with the same outcome (httpcore then assumes asyncio). Nothing changes
    when sniffio is installed.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # "import sniffio" -> ImportError at once


def create_app(
    settings: GatewaySettings,
    *,
    verifier: TrustVerifier,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GatewayApp:
    return GatewayApp(settings, verifier=verifier, transport=transport)


class GatewayApp:
    """The ASGI application (use :func:`create_app`).

    It makes and closes the connections to the upstream (``http``; ``blobs``, the lean blob client, and
    ``mover``, the copy threads, when enabled); ``proxy`` relays through them, ``manifests`` decides on
    manifests first.
    """

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
        _no_sniffio_lookups()
        self.http = httpx.AsyncClient(
            transport=transport,
            verify=settings.upstream_verify,
            timeout=httpx.Timeout(settings.io_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            follow_redirects=False,
            trust_env=False,
        )
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
        self.proxy = UpstreamProxy(self.upstream, self.http, blobs=self.blobs, mover=self.mover)
        self.signatures = SignatureVerifier(
            UpstreamReads(self.proxy, max_manifest_bytes=settings.max_manifest_bytes),
            notation=settings.notation,
            gun_prefix=settings.gun_prefix,
            ttl=verifier.ttl,
            timeout=verifier.timeout,
        )
        self.manifests = ManifestGuard(
            verifier,
            self.proxy,
            policy=settings.policy,
            max_manifest_bytes=settings.max_manifest_bytes,
            signatures=self.signatures,
            requirements=settings.requirements,
        )

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
        except ClientGone:
            log.info("client went away during %s %s", scope["method"], scope["path"])
            await hang_up(scope)
        except GatewayError as e:
            if started:
                log.warning("%s %s failed after the response started: %s", scope["method"], scope["path"], e)
                await hang_up(scope)
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
        if path != "/v2" and not path.startswith("/v2/"):
            raise GatewayError("NAME_UNKNOWN", f"{path} is not a registry API path")
        segments = path.split("/")[1:]
        if any(s in (".", "..") for s in segments) or "//" in path or any(ord(c) < 0x20 for c in path):
            raise GatewayError("NAME_INVALID", "invalid request path")
        m = _MANIFEST_PATH.match(path)
        if m is None:
            blob = _BLOB_PATH.match(path) if scope["method"] == "DELETE" else None
            if blob is not None and self.settings.policy.enabled(blob["name"]):
                log.warning("refused DELETE of blob %s in %s", blob["digest"], blob["name"])
                raise GatewayError(
                    "DENIED",
                    f"blobs of {blob['name']} are not deleted through the gateway: a blob may belong to a signed "
                    "image or to another signer's signature (the registry's garbage collection removes "
                    "unreferenced blobs)",
                )
            await self.proxy.pass_on(scope, receive, send)
            return
        ref = parse_manifest_ref(m["name"], m["ref"])
        if not self.settings.policy.enabled(ref.name):
            path = f"/v2/{ref.name}/manifests/{ref.tag or ref.digest}"
            await self.proxy.forward(scope, receive, send, path=path)
            return
        await self.manifests.handle(scope, receive, send, ref, f"{self.settings.gun_prefix}/{ref.name}")


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
