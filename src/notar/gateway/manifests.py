"""Trust decisions on manifests: what the gateway serves, accepts and deletes in a trust-enabled repository.

Fail closed: no verified answer -> refusal.

* GET/HEAD by tag: the manifest of the *signed* digest, fetched upstream by digest and checked
  against the signed sha256 and length (moving the tag in the registry changes nothing);
* GET/HEAD by digest: only a digest some signed tag resolves to, or (``allow_index_children``) a
  manifest listed in a signed index;
* PUT by tag: only when the trust data already signs that tag as the sha256 of the exact body;
  PUT by digest is content-addressed and passes;
* DELETE: refused while a signed tag (or a signed index) still points at the manifest.

What passes is sent on by the streaming proxy (:mod:`notar.gateway.proxy`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Final

from starlette.types import Receive, Scope, Send

from notar._lru import LRUCache
from notar.gateway.errors import GatewayError
from notar.gateway.policy import TrustPolicy
from notar.gateway.proxy import UpstreamProxy, client_body, forward_headers
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

__all__ = ["ManifestGuard", "ManifestRef", "parse_manifest_ref"]

log = logging.getLogger("notar.gateway")

# upstream answers to a manifest GET that are relayed as they are: auth challenges and throttling, none of
# which a client takes for a manifest; any other non-200 answer is an upstream failure
_RELAYED_STATUSES: Final = frozenset({401, 403, 429})
_CHILDREN_CACHE_SIZE: Final = 4096
_ACCEPT_ALL: Final = ", ".join(
    [*ACCEPTED_MANIFEST_TYPES, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, "*/*;q=0.1"]
).encode()
_OCTET_STREAM: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """``/v2/<name>/manifests/<reference>``: a tag or a digest of repository *name*."""

    name: str
    tag: str | None
    digest: str | None

    def show(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag is not None else f"{self.name}@{self.digest}"


@dataclass(frozen=True, slots=True)
class _Fetched:
    data: bytes
    media_type: str


def parse_manifest_ref(name: str, ref: str) -> ManifestRef:
    """The checked repository name and reference of a manifest path (NAME/TAG/DIGEST_INVALID if not)."""
    try:
        validate_repository(name)
    except InvalidReferenceError as e:
        raise GatewayError("NAME_INVALID", str(e)) from e
    if len(name) > 255:
        raise GatewayError("NAME_INVALID", "repository name must be at most 255 characters")
    if ":" in ref:
        try:
            return ManifestRef(name, None, validate_digest(ref))
        except InvalidDigestError as e:
            raise GatewayError("DIGEST_INVALID", str(e)) from e
    try:
        return ManifestRef(name, validate_tag(ref), None)
    except InvalidReferenceError as e:
        raise GatewayError("TAG_INVALID", str(e)) from e


class ManifestGuard:
    """The trust handlers of one gateway: manifests of trust-enabled repositories, checked against the
    verified trust data of their GUN (*verifier*) before *proxy* sends anything on."""

    def __init__(
        self, verifier: TrustVerifier, proxy: UpstreamProxy, *, policy: TrustPolicy, max_manifest_bytes: int
    ) -> None:
        self.verifier = verifier
        self.proxy = proxy
        self.policy = policy
        self.max_manifest_bytes = max_manifest_bytes
        self._children: LRUCache[str, frozenset[str]] = LRUCache(
            _CHILDREN_CACHE_SIZE
        )  # manifest -> all below

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
        except GatewayError as e:
            if e.code not in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "UNSUPPORTED"):
                log.warning("refused %s %s: %s", method, ref.show(), e.message)
            raise

    async def _get(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> None:
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
        fetched = await self._fetch(scope, ref.name, digest, send=send)
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

    async def _put(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
        if ref.tag is None:  # by digest: content-addressed, the registry checks the digest
            # no query string: some registries create tags from one (``?tag=``) on a PUT by digest
            await self.proxy.forward(
                scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.digest}", keep_query=False
            )
            return
        body = await _read_body(receive, self.max_manifest_bytes, scope)
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
        await self.proxy.forward(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag}", body=body, keep_query=False
        )

    async def _delete(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
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
        await self.proxy.forward(
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
        if not self.policy.allow_index_children:
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
            fetched = await self._fetch(scope, name, digest, send=None)
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

    async def _fetch(self, scope: Scope, name: str, digest: str, *, send: Send | None) -> _Fetched | None:
        """GET the manifest by digest upstream and check its bytes against *digest*.

        A non-200 answer is relayed to the client as is when *send* is given (auth challenges), and
        None returned; a 404 becomes MANIFEST_UNKNOWN.
        """
        headers = [
            (k, v) for k, v in forward_headers(scope) if k in (b"authorization", b"user-agent", b"cookie")
        ]
        # every manifest type: the bytes are checked against the signed digest, whatever their type
        headers.append((b"accept", _ACCEPT_ALL))
        url = self.proxy.url(f"/v2/{name}/manifests/{digest}", b"")
        cap = self.max_manifest_bytes
        async with self.proxy.stream("GET", url, headers) as resp:
            if resp.status_code == 404:
                raise GatewayError(
                    "MANIFEST_UNKNOWN", f"the signed manifest {digest} of {name} is not in the registry"
                )
            if resp.status_code != 200:
                if resp.status_code in _RELAYED_STATUSES:
                    if send is not None:
                        await self.proxy.relay(scope, send, resp)
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


# -- helpers ------------------------------------------------------------------------------------------------
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
