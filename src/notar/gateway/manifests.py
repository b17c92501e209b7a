"""Trust decisions on manifests: what the gateway serves, accepts and deletes in a trust-enabled repository.

Fail closed: no verified answer -> refusal. What a repository needs is its :class:`Requirement`
(:mod:`notar.gateway.formats`): ``v1`` by default, or Notation / cosign signatures, all or any of them.

v1 only (the default; :mod:`notar.gateway.manifest_v1`):

* GET/HEAD by tag: the manifest of the *signed* digest, fetched upstream by digest and checked
  against the signed sha256 and length (moving the tag in the registry changes nothing);
* GET/HEAD by digest: only a digest some signed tag resolves to, or (``allow_index_children``) a
  manifest listed in a signed index;
* PUT by tag: only when the trust data already signs that tag as the sha256 of the exact body;
  PUT by digest is content-addressed and passes;
* DELETE: refused while a signed tag (or a signed index) still points at the manifest.

With Notation or cosign in the requirement (:mod:`notar.gateway.manifest_formats`), a tag resolves to the
digest the registry's tag points at now (with v1 and ``all``: to the v1 signed digest), and that digest is
served only when its signatures verify (:class:`~notar.gateway.signatures.SignatureVerifier`) for every
format (``all``) or one of them (``any``; with v1 the signed digest is the fallback). By digest likewise;
with ``allow_index_children`` the children of an index whose signatures verified lately are served too. A
PUT by tag needs the same of the uploaded digest (sign first, then push the tag).

Signatures themselves, in every trust-enabled repository (:mod:`notar.gateway.manifest_artifacts`; what
they are: :mod:`notar.registry.artifacts`):

* served: signature manifests (by digest), referrers indexes (``sha256-<hex>`` tags) and cosign ``.sig``
  manifests -- judged on their bytes, so no image passes as one;
* pushed: a ``sha256-<hex>`` tag only as a referrers index that keeps every entry of the current one and
  whose new entries are signature manifests of ``<hex>``; a ``.sig`` tag only as a cosign manifest that keeps
  every current layer and whose new payloads name ``<hex>`` (one such PUT at a time per tag);
* never deleted while referenced: signature tags, a signature manifest listed among its subject's
  referrers, the current ``.sig`` manifest or referrers index of an image.

This module holds :class:`ManifestGuard`, which takes each manifest request to those decisions and answers
it; manifests are read upstream by :mod:`notar.gateway.manifest_fetch` (verified bytes reused for a
moment: :mod:`notar.gateway.manifest_reuse`). What passes is sent on by the streaming proxy
(:mod:`notar.gateway.proxy`).
"""

from __future__ import annotations

import hashlib
import logging

from starlette.types import Receive, Scope, Send

from notar.gateway.errors import GatewayError
from notar.gateway.formats import Format, Requirement, Requirements
from notar.gateway.manifest_artifacts import Absent, SignatureArtifacts
from notar.gateway.manifest_data import (
    Fetched,
    ManifestRef,
    manifest_type,
    parse_manifest_ref,
    request_header,
)
from notar.gateway.manifest_fetch import RELAYED, ManifestFetcher
from notar.gateway.manifest_formats import FormatManifests
from notar.gateway.manifest_v1 import V1Manifests
from notar.gateway.policy import TrustPolicy
from notar.gateway.proxy import UpstreamProxy, client_body
from notar.gateway.signatures import SignatureVerifier, UpstreamReads
from notar.gateway.trust import TrustVerifier
from notar.registry.artifacts import signature_tag

__all__ = ["ManifestGuard", "ManifestRef", "parse_manifest_ref"]

log = logging.getLogger("notar.gateway")


class ManifestGuard:
    """The trust handlers of one gateway: manifests of trust-enabled repositories, checked against the
    verified trust data of their GUN (*verifier*) and, where the repository's formats say so, the Notation
    and cosign signatures of the digest (*signatures*), before *proxy* sends anything on."""

    def __init__(
        self,
        verifier: TrustVerifier,
        proxy: UpstreamProxy,
        *,
        policy: TrustPolicy,
        max_manifest_bytes: int,
        signatures: SignatureVerifier | None = None,
        requirements: Requirements | None = None,
    ) -> None:
        self.verifier = verifier
        self.proxy = proxy
        self.policy = policy
        self.max_manifest_bytes = max_manifest_bytes
        self.reads = UpstreamReads(proxy, max_manifest_bytes=max_manifest_bytes)
        self.signatures = signatures or SignatureVerifier(
            self.reads, notation=None, gun_prefix="", ttl=verifier.ttl, timeout=verifier.timeout
        )
        self.requirements = requirements or Requirements(())
        self.fetcher = ManifestFetcher(proxy, max_manifest_bytes=max_manifest_bytes, verifier=verifier)
        self.v1 = V1Manifests(verifier, self.fetcher, policy=policy)
        self.formats = FormatManifests(verifier, self.fetcher, self.v1, self.signatures, policy=policy)
        self.artifacts = SignatureArtifacts(proxy, self.fetcher, self.reads, self.signatures)

    def requirement(self, name: str) -> Requirement:
        """What pulls of repository *name* need."""
        return self.requirements.for_rule(self.policy.rule_for(name))

    async def handle(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
        """Answer a manifest request of GUN *gun*; a refusal is logged and raised as :class:`GatewayError`."""
        method: str = scope["method"]
        try:
            if method in ("GET", "HEAD"):
                await self._get(scope, send, ref, gun)
            elif method == "PUT":
                await self._put(scope, receive, send, ref, gun)
            elif method == "DELETE":
                await self._delete(scope, receive, send, ref, gun)
            else:
                raise GatewayError("UNSUPPORTED", f"{method} is not supported on manifests")
        except Absent as e:
            log.debug("%s %s: %s", method, ref.show(), e.message)
            raise
        except GatewayError as e:
            if e.code not in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "UNSUPPORTED"):
                log.warning("refused %s %s: %s", method, ref.show(), e.message)
            raise

    # -- GET / HEAD -----------------------------------------------------------------------------------
    async def _get(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> None:
        if ref.tag is not None and signature_tag(ref.tag) is not None:
            fetched = await self.artifacts.get_tag(scope, send, ref)
        elif self.requirement(ref.name).v1_only:
            fetched = await self.v1.get(scope, send, ref, gun)
        elif ref.tag is not None:
            fetched = await self.formats.get_tag(scope, send, ref, ref.tag, gun, self.requirement(ref.name))
        else:
            fetched = await self.formats.get_digest(scope, send, ref, gun, self.requirement(ref.name))
        if fetched is None:
            return  # the upstream's own answer (e.g. an auth challenge) was relayed
        if not _accepts(scope, fetched.media_type):
            raise GatewayError(
                "MANIFEST_UNKNOWN",
                f"the signed manifest {fetched.digest} is a {fetched.media_type}, which the client does not accept",
                detail={"Digest": fetched.digest, "MediaType": fetched.media_type},
            )
        headers = [
            (b"content-type", fetched.media_type.encode("latin-1")),
            (b"content-length", str(len(fetched.data)).encode()),
            (b"docker-content-digest", fetched.digest.encode()),
            (b"etag", f'"{fetched.digest}"'.encode()),
            (b"docker-distribution-api-version", b"registry/2.0"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else fetched.data
        await send({"type": "http.response.body", "body": body, "more_body": False})

    # -- PUT ------------------------------------------------------------------------------------------
    async def _put(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
        body = await _read_body(receive, self.max_manifest_bytes, scope)
        if ref.tag is None:  # by digest: content-addressed, the registry checks the digest
            # no query string: some registries create tags from one (``?tag=``) on a PUT by digest
            await self.proxy.forward(
                scope,
                receive,
                send,
                path=f"/v2/{ref.name}/manifests/{ref.digest}",
                body=body,
                keep_query=False,
            )
            self.artifacts.pushed_by_digest(scope, ref.name, body)
            return
        if signature_tag(ref.tag) is not None:
            await self.artifacts.put_tag(scope, receive, send, ref, body)
            return
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        req = self.requirement(ref.name)
        if not req.v1_only:
            fetched = Fetched(body, manifest_type(body, request_header(scope, b"content-type")), digest)
            await self.formats.check_put(scope, ref, gun, fetched, req)
        else:
            await self.v1.check_put(gun, ref.tag, digest)
        await self.proxy.forward(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag}", body=body, keep_query=False
        )

    # -- DELETE ---------------------------------------------------------------------------------------
    async def _delete(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
        req = self.requirement(ref.name)
        if ref.tag is not None and signature_tag(ref.tag) is not None:
            raise GatewayError(
                "DENIED",
                f"{ref.name}:{ref.tag} holds signatures: deleting the tag would remove every signature in it",
            )
        if Format.V1 in req.formats:
            await self.v1.check_delete(scope, ref, gun)
        if ref.digest is not None:
            fetched = await self.fetcher.fetch_ref(scope, send, ref.name, ref.digest)
            if fetched is RELAYED:
                return
            if isinstance(fetched, Fetched):
                await self.artifacts.refuse_if_referenced(scope, ref.name, fetched)
        await self.proxy.forward(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag or ref.digest}", keep_query=False
        )


# -- helpers ------------------------------------------------------------------------------------------------
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


async def _read_body(receive: Receive, cap: int, scope: Scope | None = None) -> bytes:
    if scope is not None:
        for k, v in scope["headers"]:
            if k.lower() == b"content-length" and v.strip().isdigit() and int(v) > cap:
                raise GatewayError("TOO_LARGE", f"manifests are limited to {cap} bytes")
    chunks, size = [], 0
    async for chunk in client_body(receive):
        size += len(chunk)
        if size > cap:
            raise GatewayError("TOO_LARGE", f"manifests are limited to {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
