"""Trust decisions on manifests: what the gateway serves, accepts and deletes in a trust-enabled repository.

Fail closed: no verified answer -> refusal. What a repository needs is its :class:`Requirement`
(:mod:`notar.gateway.formats`): ``v1`` by default, or Notation / cosign signatures, all or any of them.

v1 only (the default):

* GET/HEAD by tag: the manifest of the *signed* digest, fetched upstream by digest and checked
  against the signed sha256 and length (moving the tag in the registry changes nothing);
* GET/HEAD by digest: only a digest some signed tag resolves to, or (``allow_index_children``) a
  manifest listed in a signed index;
* PUT by tag: only when the trust data already signs that tag as the sha256 of the exact body;
  PUT by digest is content-addressed and passes;
* DELETE: refused while a signed tag (or a signed index) still points at the manifest.

With Notation or cosign in the requirement, a tag resolves to the digest the registry's tag points at now
(with v1 and ``all``: to the v1 signed digest), and that digest is served only when its signatures verify
(:class:`~notar.gateway.signatures.SignatureVerifier`) for every format (``all``) or one of them
(``any``; with v1 the signed digest is the fallback). By digest likewise; with ``allow_index_children``
the children of an index whose signatures verified lately are served too. A PUT by tag needs the same of
the uploaded digest (sign first, then push the tag).

Signatures themselves, in every trust-enabled repository (:mod:`notar.registry.artifacts`):

* served: signature manifests (by digest), referrers indexes (``sha256-<hex>`` tags) and cosign ``.sig``
  manifests -- judged on their bytes, so no image passes as one;
* pushed: a ``sha256-<hex>`` tag only as a referrers index that keeps every entry of the current one and
  whose new entries are signature manifests of ``<hex>``; a ``.sig`` tag only as a cosign manifest that keeps
  every current layer and whose new payloads name ``<hex>`` (one such PUT at a time per tag);
* never deleted while referenced: signature tags, a signature manifest listed among its subject's
  referrers, the current ``.sig`` manifest or referrers index of an image.

What passes is sent on by the streaming proxy (:mod:`notar.gateway.proxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from starlette.types import Receive, Scope, Send

from notar._lru import LRUCache
from notar.gateway.errors import GatewayError
from notar.gateway.formats import Format, Mode, Requirement, Requirements
from notar.gateway.policy import TrustPolicy
from notar.gateway.proxy import UpstreamProxy, client_body, forward_headers
from notar.gateway.signatures import ReadProblem, SignatureVerifier, UpstreamReads, credentials
from notar.gateway.trust import SignedTag, TrustVerifier, TrustView
from notar.notation import Descriptor
from notar.registry import InvalidDigestError, InvalidReferenceError, validate_digest
from notar.registry.artifacts import (
    Kind,
    TagKind,
    added_items,
    classify,
    dropped_entries,
    dropped_layers,
    signature_tag,
    subject_of,
)
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
from notar.registry.referrers import cosign_signature_tag, referrers_tag

__all__ = ["ManifestGuard", "ManifestRef", "parse_manifest_ref"]

log = logging.getLogger("notar.gateway")

# upstream answers to a manifest GET that are relayed as they are: auth challenges and throttling, none of
# which a client takes for a manifest; any other non-200 answer is an upstream failure
_RELAYED_STATUSES: Final = frozenset({401, 403, 429})
_CHILDREN_CACHE_SIZE: Final = 4096
_PARENTS_CACHE_SIZE: Final = 4096  # repositories (per format) with indexes verified lately
_PARENTS_PER_REPOSITORY: Final = 16
_MAX_PROBES: Final = 100  # entries (layers) read to find what a signature document refers to
_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
_ACCEPT_ALL: Final = ", ".join(
    [*ACCEPTED_MANIFEST_TYPES, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED, "*/*;q=0.1"]
).encode()
_OCTET_STREAM: Final = "application/octet-stream"
_RECENT_BYTES: Final = 32 * 1024 * 1024  # verified manifest bytes kept for --cache-ttl (see _RecentManifests)
_RECENT_ENTRIES: Final = 4096
_ERROR_BODY_BYTES: Final = 64 * 1024
# what each signature tag must hold
_TAG_HOLDS: Final = {TagKind.REFERRERS: Kind.REFERRERS_INDEX, TagKind.COSIGN: Kind.COSIGN}


class _Relayed(Enum):
    """The upstream's own answer (an auth challenge, throttling) was relayed, or would have been."""

    RELAYED = "relayed"


_RELAYED: Final = _Relayed.RELAYED


class _Absent(GatewayError):
    """A signature tag that does not exist (yet): answered 404 like the registry would, logged quietly."""


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
    digest: str  # sha256 of data ("" for a body not yet pushed, where it is not needed)


# (repository, digest, sha256 of the client's Authorization and Cookie headers, names and values)
_RecentKey = tuple[str, str, bytes]


class _TTLClock(Protocol):
    """What the cache reads of the trust verifier (read on every call: tests move the clock)."""

    ttl: float

    def clock(self) -> float: ...


class _RecentManifests:
    """Manifest bytes the registry served a moment ago and that hashed to their digest, each for ``ttl``
    seconds (``--cache-ttl``; 0: none kept), so that a pull of a signed tag with cached trust needs no
    upstream round trip.

    The bytes are content-addressed, so they can never be the wrong manifest; what the cache does believe
    for up to ``ttl`` seconds is the registry's answer to *these credentials*: an entry is only served to
    requests that carry the same ``Authorization`` and ``Cookie`` headers as the one that fetched it (a
    client without credentials never gets what the registry gave a client with them; an auth challenge is
    still the registry's), and a manifest deleted upstream is served until its entry expires, as a tag's
    trust decision is. Which digest a tag is served as is decided on every request by the trust data, never
    by this cache. Bounded: at most :data:`_RECENT_ENTRIES` entries and :data:`_RECENT_BYTES` bytes, the
    oldest dropped first.
    """

    def __init__(
        self, verifier: _TTLClock, *, max_bytes: int = _RECENT_BYTES, max_entries: int = _RECENT_ENTRIES
    ) -> None:
        self._verifier = verifier  # its ttl and clock, read on every call
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._bytes = 0
        self._entries: OrderedDict[_RecentKey, tuple[float, _Fetched]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(scope: Scope, name: str, digest: str) -> _RecentKey:
        """The credentials are kept as a hash of their names and values: a key costs the same few bytes
        whatever a client sends (a 4 MiB Cookie per request would otherwise be held for ``ttl``, outside
        the byte budget), and ``Cookie: X`` is not ``Authorization: X``."""
        credentials = hashlib.sha256()
        for k, v in scope["headers"]:
            lower = k.lower()
            if lower in (b"authorization", b"cookie"):
                credentials.update(b"%d:%s=%d:%s;" % (len(lower), lower, len(v), v))
        return (name, digest, credentials.digest())

    def get(self, key: _RecentKey) -> _Fetched | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._verifier.clock() - entry[0] < self._verifier.ttl:
            return entry[1]
        self._drop(key)
        return None

    def put(self, key: _RecentKey, fetched: _Fetched) -> None:
        ttl, now = self._verifier.ttl, self._verifier.clock()
        if ttl <= 0 or len(fetched.data) > self._max_bytes:
            return
        self._drop(key)
        self._entries[key] = (now, fetched)
        self._bytes += len(fetched.data)
        while self._entries:  # the oldest first: expired, or beyond the bounds
            oldest, (stored, _) = next(iter(self._entries.items()))
            if (
                now - stored < ttl
                and self._bytes <= self._max_bytes
                and len(self._entries) <= self._max_entries
            ):
                break
            self._drop(oldest)

    def _drop(self, key: _RecentKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1].data)


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
        self._children: LRUCache[str, frozenset[str]] = LRUCache(
            _CHILDREN_CACHE_SIZE
        )  # manifest -> all below
        # (format, repository) -> indexes whose signatures verified lately, newest first: their children are
        # served by digest (allow_index_children), as v1 serves the children of a signed index
        self._parents: LRUCache[tuple[Format, str], tuple[Descriptor, ...]] = LRUCache(_PARENTS_CACHE_SIZE)
        self._tag_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._recent = _RecentManifests(verifier)

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
        except _Absent as e:
            log.debug("%s %s: %s", method, ref.show(), e.message)
            raise
        except GatewayError as e:
            if e.code not in ("UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "UNSUPPORTED"):
                log.warning("refused %s %s: %s", method, ref.show(), e.message)
            raise

    # -- GET / HEAD -----------------------------------------------------------------------------------
    async def _get(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> None:
        if ref.tag is not None and signature_tag(ref.tag) is not None:
            fetched = await self._get_signature_tag(scope, send, ref)
        elif self.requirement(ref.name).v1_only:
            fetched = await self._get_v1(scope, send, ref, gun)
        elif ref.tag is not None:
            fetched = await self._get_tag(scope, send, ref, ref.tag, gun)
        else:
            fetched = await self._get_digest(scope, send, ref, gun)
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

    async def _get_v1(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> _Fetched | None:
        """Docker Content Trust only: a tag is its signed digest, a digest must be signed (or a signature)."""
        view = await self.verifier.view(gun)
        if ref.tag is not None:
            signed = await self._signed_tag(gun, ref.tag, view)
            return await self._fetch_signed(scope, send, ref.name, signed)
        assert ref.digest is not None
        if await self._digest_allowed(scope, ref.name, ref.digest, view):
            return await self._fetch_recent(scope, send, ref.name, ref.digest)
        refusal = GatewayError(
            "MANIFEST_UNKNOWN",
            f"no valid trust data for {ref.digest}: no signed tag of {gun} points at it",
            detail={"Digest": ref.digest},
        )
        fetched = await self._fetch_or(scope, send, ref.name, ref.digest, refusal)
        if fetched is not None and _kind(fetched) is None:
            raise refusal
        return fetched  # a signature artifact: served unsigned, it carries no content

    async def _signed_tag(self, gun: str, tag: str, view: TrustView) -> SignedTag:
        """The v1 signed digest of *tag* (MANIFEST_UNKNOWN when there is none)."""
        signed = view.tags.get(tag)
        if signed is None:
            # a refusal is decided on data at most a second old, so a tag signed just now is served
            # at once; at most one refresh per second per repository however often it is asked for
            view = await self.verifier.view(gun, max_age=1.0)
            signed = view.tags.get(tag)
        if signed is None:
            raise GatewayError("MANIFEST_UNKNOWN", _no_trust(tag, view), detail={"Tag": tag})
        return signed

    async def _fetch_signed(self, scope: Scope, send: Send, name: str, signed: SignedTag) -> _Fetched | None:
        fetched = await self._fetch_recent(scope, send, name, signed.digest)
        if fetched is not None and len(fetched.data) != signed.size:
            raise GatewayError(
                "DENIED",
                f"the registry's manifest {signed.digest} is {len(fetched.data)} bytes, the signed size is "
                f"{signed.size}",
            )
        return fetched

    async def _get_tag(
        self, scope: Scope, send: Send, ref: ManifestRef, tag: str, gun: str
    ) -> _Fetched | None:
        """A tag under formats: the registry's digest for it (or, with v1, the signed one) if it satisfies
        the repository's requirement.

        ``all`` with v1: the signed digest, which must carry the other formats too. Without v1: the digest
        the registry's tag points at now. ``any`` with v1: the registry's digest if it satisfies one of the
        formats, else the v1 signed digest (as a v1-only gateway serves it).
        """
        req = self.requirement(ref.name)
        v1 = Format.V1 in req.formats
        if v1 and req.mode is Mode.ALL:
            signed = await self._signed_tag(gun, tag, await self.verifier.view(gun))
            pinned = await self._fetch_signed(scope, send, ref.name, signed)
            if pinned is None:
                return None
            ok, why = await self._satisfied(scope, req, ref.name, gun, pinned, tag=tag)
            if ok:
                return pinned
            raise self._unsatisfied(ref, req, pinned.digest, why)
        reasons: list[str] = []
        current = await self._fetch_ref(scope, send, ref.name, tag)
        if current is _RELAYED:
            return None
        failure: GatewayError | None = None
        if isinstance(current, _Fetched):
            try:
                ok, reasons = await self._satisfied(scope, req, ref.name, gun, current, tag=tag)
            except GatewayError as e:
                if not v1:
                    raise
                failure, ok = e, False  # the v1 signed digest may still be served
            if ok:
                return current
        untrusted = ""
        if v1:  # any: the v1 signed digest, if there is one
            view = await self.verifier.view(gun)
            if tag not in view.tags:
                view = await self.verifier.view(gun, max_age=1.0)
            fallback = view.tags.get(tag)
            if fallback is not None:
                return await self._fetch_signed(scope, send, ref.name, fallback)
            if failure is not None:
                raise failure
            untrusted = f" and {_no_trust(tag, view)}"
        if not isinstance(current, _Fetched):
            raise GatewayError(
                "MANIFEST_UNKNOWN", f"{ref.name}:{tag} is not in the registry{untrusted}", detail={"Tag": tag}
            )
        raise self._unsatisfied(ref, req, current.digest, reasons)

    async def _get_digest(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> _Fetched | None:
        assert ref.digest is not None
        req = self.requirement(ref.name)
        refusal = GatewayError(
            "MANIFEST_UNKNOWN", f"{ref.digest} is not in the registry", detail={"Digest": ref.digest}
        )
        fetched = await self._fetch_or(scope, send, ref.name, ref.digest, refusal)
        if fetched is None or _kind(fetched) is not None:
            return fetched  # relayed, or a signature artifact
        ok, reasons = await self._satisfied(scope, req, ref.name, gun, fetched, tag=None)
        if ok:
            return fetched
        raise self._unsatisfied(ref, req, fetched.digest, reasons)

    async def _get_signature_tag(self, scope: Scope, send: Send, ref: ManifestRef) -> _Fetched | None:
        """``sha256-<hex>`` (referrers index) or ``sha256-<hex>.sig`` (cosign): what the registry holds,
        if it is what such a tag holds; never content."""
        assert ref.tag is not None
        found = signature_tag(ref.tag)
        assert found is not None
        tag_kind = found[0]
        fetched = await self._fetch_ref(scope, send, ref.name, ref.tag)
        if fetched is _RELAYED:
            return None
        if fetched is None:  # no signatures yet: what every signer asks first, not a refusal
            raise _Absent(
                "MANIFEST_UNKNOWN", f"{ref.name}:{ref.tag} is not in the registry", detail={"Tag": ref.tag}
            )
        assert isinstance(fetched, _Fetched)
        kind = _kind(fetched)
        if kind is not _TAG_HOLDS[tag_kind]:
            raise GatewayError(
                "MANIFEST_UNKNOWN",
                f"{ref.name}:{ref.tag} is a {tag_kind} tag, but the registry holds "
                f"{'a ' + str(kind) if kind else 'content'} ({fetched.digest}) under it: not served",
                detail={"Tag": ref.tag, "Digest": fetched.digest},
            )
        return fetched

    # -- requirements ---------------------------------------------------------------------------------
    def _unsatisfied(
        self, ref: ManifestRef, req: Requirement, digest: str, reasons: list[str]
    ) -> GatewayError:
        what = f"{ref.name}:{ref.tag} ({digest})" if ref.tag is not None else f"{ref.name}@{digest}"
        return GatewayError(
            "MANIFEST_UNKNOWN",
            f"{what} is not signed as {ref.name} requires ({req.describe()}): {'; '.join(reasons)}",
            detail={"Digest": digest, "Required": req.describe()} | ({"Tag": ref.tag} if ref.tag else {}),
        )

    async def _satisfied(
        self,
        scope: Scope,
        req: Requirement,
        name: str,
        gun: str,
        fetched: _Fetched,
        *,
        tag: str | None,
        fresh: bool = False,
    ) -> tuple[bool, list[str]]:
        """Whether *fetched* (under *tag*, or by digest) satisfies *req*, and why not (one reason per format
        that failed; ``all`` stops at the first)."""
        reasons: list[str] = []
        failure: GatewayError | None = None
        for fmt in req.formats:
            try:
                ok, why = await self._holds(scope, fmt, req, name, gun, fetched, tag=tag, fresh=fresh)
            except GatewayError as e:
                if req.mode is Mode.ALL:
                    raise
                # any: another format may still hold; if none does, this failure is the answer (not "unsigned")
                failure = failure or e
                ok, why = False, f"{fmt}: {e.message}"
            if ok and req.mode is Mode.ANY:
                return True, []
            if not ok:
                reasons.append(why)
                if req.mode is Mode.ALL:
                    return False, reasons
        if failure is not None:
            raise failure
        return req.mode is Mode.ALL, reasons

    async def _holds(
        self,
        scope: Scope,
        fmt: Format,
        req: Requirement,
        name: str,
        gun: str,
        fetched: _Fetched,
        *,
        tag: str | None,
        fresh: bool,
    ) -> tuple[bool, str]:
        digest = fetched.digest
        if fmt is Format.V1:
            for attempt in range(2):
                if fresh:
                    view = await self.verifier.view(gun, fresh=True)
                else:
                    view = await self.verifier.view(gun, max_age=1.0 if attempt else None)
                if tag is not None:
                    signed = view.tags.get(tag)
                    if signed is not None and signed.digest == digest and signed.size == len(fetched.data):
                        return True, ""
                    why = (
                        f"v1: {tag} is signed as {signed.digest}" if signed else f"v1: {_no_trust(tag, view)}"
                    )
                elif await self._digest_allowed(scope, name, digest, view):
                    return True, ""
                else:
                    why = f"v1: no signed tag of {gun} points at it"
                if fresh:
                    break
            return False, why
        subject = Descriptor(fetched.media_type, digest, len(fetched.data))
        headers = list(scope["headers"])
        check = await self.signatures.check(fmt, name, subject, keys=req.keys, headers=headers, fresh=fresh)
        if not check.verified and not fresh:  # a signature pushed a moment ago counts at once
            check = await self.signatures.check(
                fmt, name, subject, keys=req.keys, headers=headers, max_age=1.0
            )
        if check.verified:
            if fetched.media_type in INDEX_MEDIA_TYPES:
                self._remember_parent(fmt, name, subject)
            return True, ""
        if tag is None and self.policy.allow_index_children:
            parent = await self._verified_parent(scope, fmt, req, name, digest)
            if parent is not None:
                return True, ""
        return False, check.reason

    def _remember_parent(self, fmt: Format, name: str, index: Descriptor) -> None:
        known = self._parents.get((fmt, name)) or ()
        self._parents.put(
            (fmt, name), (index, *(p for p in known if p.digest != index.digest))[:_PARENTS_PER_REPOSITORY]
        )

    async def _verified_parent(
        self, scope: Scope, fmt: Format, req: Requirement, name: str, digest: str
    ) -> Descriptor | None:
        """A recently verified index of *name* that lists *digest* (directly or below) and still verifies."""
        for parent in self._parents.get((fmt, name)) or ():
            below = await self._descendants(scope, name, parent.digest)
            if below is None or digest not in below:
                continue
            check = await self.signatures.check(
                fmt, name, parent, keys=req.keys, headers=list(scope["headers"])
            )
            if check.verified:
                return parent
        return None

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
            pushed = _Fetched(body, _manifest_type(body, _header(scope, b"content-type")), "")
            parsed = json_object(body)
            subject = subject_of(parsed) if parsed is not None and _kind(pushed) is not None else None
            if subject is not None:  # a referrers API lists it now
                self.signatures.forget(ref.name, subject)
            return
        if signature_tag(ref.tag) is not None:
            await self._put_signature_tag(scope, receive, send, ref, body)
            return
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        req = self.requirement(ref.name)
        if not req.v1_only:
            fetched = _Fetched(body, _manifest_type(body, _header(scope, b"content-type")), digest)
            ok, reasons = await self._satisfied(scope, req, ref.name, gun, fetched, tag=ref.tag)
            if not ok:  # just signed? do not trust a stale cache
                ok, reasons = await self._satisfied(
                    scope, req, ref.name, gun, fetched, tag=ref.tag, fresh=True
                )
            if not ok:
                raise GatewayError(
                    "DENIED",
                    f"{gun}:{ref.tag}: the uploaded manifest {digest} is not signed as {ref.name} requires "
                    f"({req.describe()}): {'; '.join(reasons)}. Push the manifest by digest and sign it first",
                    detail={"Tag": ref.tag, "Digest": digest},
                )
        else:
            view = await self.verifier.view(gun)
            signed = view.tags.get(ref.tag)
            if signed is None or signed.digest != digest:
                view = await self.verifier.view(gun, fresh=True)  # just signed? do not trust a stale cache
                signed = view.tags.get(ref.tag)
            if signed is None or signed.digest != digest:
                now = f"signed as {signed.digest}" if signed is not None else "not signed"
                raise GatewayError(
                    "DENIED",
                    f"{gun}:{ref.tag} is {now}, the uploaded manifest is {digest}: push the manifest by digest "
                    "and sign the tag first (`notar sign`), or use `notar push`",
                    detail={"Tag": ref.tag, "Digest": digest},
                )
        await self.proxy.forward(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag}", body=body, keep_query=False
        )

    async def _put_signature_tag(
        self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, body: bytes
    ) -> None:
        """A new referrers index or ``.sig`` manifest: accepted when it is one, and keeps every entry (layer)
        of the one it replaces. One such PUT at a time per tag through this gateway."""
        assert ref.tag is not None
        found = signature_tag(ref.tag)
        assert found is not None
        tag_kind = found[0]
        new = _Fetched(body, _manifest_type(body, _header(scope, b"content-type")), "")
        kind = _kind(new)
        if kind is not _TAG_HOLDS[tag_kind]:
            expected = "an OCI index of referrer descriptors (each with an artifactType)"
            if tag_kind is TagKind.COSIGN:
                expected = "an image manifest of cosign simplesigning layers"
            raise GatewayError(
                "DENIED",
                f"{ref.name}:{ref.tag} is a {tag_kind} tag: it takes {expected}, not "
                f"{'a ' + str(kind) if kind else 'this manifest'}",
                detail={"Tag": ref.tag},
            )
        async with self._tag_lock(ref.name, ref.tag):
            current = await self._fetch_ref(scope, send, ref.name, ref.tag)
            if current is _RELAYED:
                return
            now = json_object(body)
            assert now is not None
            kept = (
                json_object(current.data)
                if isinstance(current, _Fetched) and _kind(current) is kind
                else None
            )
            if kept is not None:
                dropped = (
                    dropped_entries(kept, now) if tag_kind is TagKind.REFERRERS else dropped_layers(kept, now)
                )
                if dropped:
                    what = "entries" if tag_kind is TagKind.REFERRERS else "signatures (layers)"
                    raise GatewayError(
                        "DENIED",
                        f"{ref.name}:{ref.tag}: the new manifest drops {len(dropped)} of the {what} there now "
                        f"({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''}): another signer's "
                        "signatures cannot be removed or replaced; read the tag again and add to it",
                        detail={"Tag": ref.tag, "Dropped": dropped},
                    )
            await self._check_additions(scope, ref, tag_kind, found[1], kept, now)
            await self.proxy.forward(
                scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag}", body=body, keep_query=False
            )
        self.signatures.forget(ref.name, found[1])  # counts at once, without waiting out the cache

    async def _check_additions(
        self,
        scope: Scope,
        ref: ManifestRef,
        tag_kind: TagKind,
        subject: str,
        current: dict[str, object] | None,
        new: dict[str, object],
    ) -> None:
        """What a PUT adds to a signature tag must be signatures of the tag's own digest (*subject*):

        * a referrers index entry: a signature manifest already in the registry (judged on its content)
          whose ``subject`` is *subject* -- not an image, not the subject itself, not another image's;
        * a ``.sig`` layer: a simplesigning payload already in the registry naming *subject*.

        DENIED otherwise (or when it cannot be read). Checked only for what is new, at most
        :data:`_MAX_PROBES` items.
        """
        headers = credentials(list(scope["headers"]))
        key = "manifests" if tag_kind is TagKind.REFERRERS else "layers"
        added = added_items(current, new, key)
        if len(added) > _MAX_PROBES:
            raise GatewayError("DENIED", f"{ref.name}:{ref.tag}: more than {_MAX_PROBES} new entries at once")
        for item in added:
            digest = item.get("digest")
            try:
                digest = validate_digest(str(digest))
                if tag_kind is TagKind.REFERRERS:
                    problem = await self._referrer_problem(ref.name, digest, subject, headers)
                else:
                    problem = await self._payload_problem(
                        ref.name, digest, item.get("size"), subject, headers
                    )
            except InvalidDigestError:
                problem = "not a valid digest"
            except ReadProblem as e:
                problem = str(e)
            if problem is not None:
                raise GatewayError(
                    "DENIED",
                    f"{ref.name}:{ref.tag}: the new entry {digest} is not a signature of {subject}: {problem}",
                    detail={"Tag": ref.tag, "Entry": str(digest)},
                )

    async def _referrer_problem(
        self, name: str, digest: str, subject: str, headers: list[tuple[bytes, bytes]]
    ) -> str | None:
        found = await self.reads.manifest(name, digest, headers)
        if found is None:
            return "it is not in the registry (push the signature manifest first)"
        kind = classify(json_object(found.data), found.media_type)
        if kind is None or kind is Kind.REFERRERS_INDEX:
            return "it is not a signature manifest"
        parsed = json_object(found.data)
        named = subject_of(parsed) if parsed is not None else None
        if named != subject:
            return f"its subject is {named}" if named else "it has no subject"
        return None

    async def _payload_problem(
        self, name: str, digest: str, size: object, subject: str, headers: list[tuple[bytes, bytes]]
    ) -> str | None:
        if type(size) is not int:
            return "the layer has no size"
        payload = await self.reads.blob(name, digest, size, _MAX_PAYLOAD_BYTES, headers)
        if payload is None:
            return "its payload is not in the registry (push the blob first)"
        named = _payload_digest(payload)
        if named != subject:
            return f"its payload names {named}" if named else "its payload names no image digest"
        return None

    @contextlib.asynccontextmanager
    async def _tag_lock(self, name: str, tag: str) -> AsyncIterator[None]:
        key = (name, tag)
        lock = self._tag_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._tag_locks.get(key) is lock:
                del self._tag_locks[key]

    # -- DELETE ---------------------------------------------------------------------------------------
    async def _delete(self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, gun: str) -> None:
        req = self.requirement(ref.name)
        if ref.tag is not None and signature_tag(ref.tag) is not None:
            raise GatewayError(
                "DENIED",
                f"{ref.name}:{ref.tag} holds signatures: deleting the tag would remove every signature in it",
            )
        if Format.V1 in req.formats:
            view = await self.verifier.view(gun, fresh=True)  # deleting: decide on fresh data
            if ref.tag is not None:
                if ref.tag in view.tags:
                    raise GatewayError(
                        "DENIED",
                        f"{gun}:{ref.tag} is signed: revoke it first (`notar revoke {gun}:{ref.tag}`)",
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
        if ref.digest is not None:
            fetched = await self._fetch_ref(scope, send, ref.name, ref.digest)
            if fetched is _RELAYED:
                return
            if isinstance(fetched, _Fetched):
                await self._refuse_if_referenced(scope, ref.name, fetched)
        await self.proxy.forward(
            scope, receive, send, path=f"/v2/{ref.name}/manifests/{ref.tag or ref.digest}", keep_query=False
        )

    async def _refuse_if_referenced(self, scope: Scope, name: str, fetched: _Fetched) -> None:
        """DENIED when *fetched* is a signature artifact that something still refers to: listed among its
        subject's referrers, or the current manifest of a ``sha256-<hex>`` / ``.sig`` tag of an image it
        names. What it names is read from all its entries (layers), not the first: one planted entry must
        not make a shared document deletable. When that cannot be told, refused too (fail closed)."""
        kind = _kind(fetched)
        if kind is None:
            return
        headers = credentials(list(scope["headers"]))
        body = json_object(fetched.data)
        assert body is not None
        digest = fetched.digest
        try:
            if kind is Kind.REFERRERS_INDEX:
                tags = [referrers_tag(s) for s in await self._index_subjects(name, body, headers)]
            elif kind is Kind.COSIGN:
                tags = [cosign_signature_tag(s) for s in await self._cosign_subjects(name, body, headers)]
            else:
                tags = []
            for tag in tags:
                if await self._tagged(name, tag, headers) == digest:
                    raise GatewayError(
                        "DENIED",
                        f"{digest} is the current {kind} of {name}:{tag}: deleting it would remove "
                        "the signatures it holds",
                    )
            subject = subject_of(body)
            if subject is not None and any(
                r.digest == digest for r in await self.reads.referrers(name, subject, headers)
            ):
                raise GatewayError(
                    "DENIED", f"{digest} is a {kind} of {subject}, listed among its referrers: not deleted"
                )
        except ReadProblem as e:
            raise GatewayError(
                "DENIED", f"cannot tell whether {digest} is referenced ({e}): not deleted"
            ) from e

    async def _tagged(self, name: str, tag: str, headers: list[tuple[bytes, bytes]]) -> str | None:
        found = await self.reads.manifest(name, tag, headers)
        return found.digest if found is not None else None

    async def _index_subjects(
        self, name: str, body: dict[str, object], headers: list[tuple[bytes, bytes]]
    ) -> set[str]:
        """The subjects of every entry of a referrers index (DENIED when one cannot be read)."""
        entries = body.get("manifests")
        entries = entries if isinstance(entries, list) else []
        if len(entries) > _MAX_PROBES:
            raise GatewayError("DENIED", f"a referrers index of {len(entries)} entries is not deleted")
        subjects = set()
        for entry in entries:
            digest = entry.get("digest") if isinstance(entry, dict) else None
            try:
                found = await self.reads.manifest(name, validate_digest(str(digest)), headers)
            except InvalidDigestError:
                continue  # not a manifest the index can make findable
            parsed = json_object(found.data) if found is not None else None
            subject = subject_of(parsed) if parsed is not None else None
            if subject is None:
                raise GatewayError(
                    "DENIED",
                    f"cannot tell which image the referrers index entry {digest} refers to: not deleted",
                )
            subjects.add(subject)
        return subjects

    async def _cosign_subjects(
        self, name: str, body: dict[str, object], headers: list[tuple[bytes, bytes]]
    ) -> set[str]:
        """The digests the simplesigning payloads of a ``.sig`` manifest name, and its ``subject`` if any
        (DENIED when a payload cannot be read)."""
        layers = body.get("layers")
        layers = layers if isinstance(layers, list) else []
        if len(layers) > _MAX_PROBES:
            raise GatewayError("DENIED", f"cosign signatures of {len(layers)} layers are not deleted")
        subjects = set()
        subject = subject_of(body)
        if subject is not None:
            subjects.add(subject)
        for layer in layers:
            layer_digest = layer.get("digest") if isinstance(layer, dict) else None
            size = layer.get("size") if isinstance(layer, dict) else None
            signed = None
            try:
                if isinstance(layer_digest, str) and type(size) is int:
                    payload = await self.reads.blob(
                        name, validate_digest(layer_digest), size, _MAX_PAYLOAD_BYTES, headers
                    )
                    signed = _payload_digest(payload) if payload is not None else None
            except InvalidDigestError:
                signed = None
            if signed is None:
                raise GatewayError(
                    "DENIED",
                    f"cannot tell which image the cosign signature {layer_digest} signs: not deleted",
                )
            subjects.add(signed)
        return subjects

    # -- v1 index children ----------------------------------------------------------------------------
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

    # -- upstream reads -------------------------------------------------------------------------------
    async def _fetch_recent(self, scope: Scope, send: Send, name: str, digest: str) -> _Fetched | None:
        """:meth:`_fetch` of a digest the trust data lets through, or the same bytes fetched a moment ago for
        the same credentials (:class:`_RecentManifests`)."""
        key = self._recent.key(scope, name, digest)
        fetched = self._recent.get(key)
        if fetched is None:
            fetched = await self._fetch(scope, name, digest, send=send)
            if fetched is not None:
                self._recent.put(key, fetched)
        return fetched

    async def _fetch(self, scope: Scope, name: str, digest: str, *, send: Send | None) -> _Fetched | None:
        """GET the manifest by digest upstream and check its bytes against *digest*.

        A non-200 answer is relayed to the client as is when *send* is given (auth challenges), and
        None returned; a 404 becomes MANIFEST_UNKNOWN.
        """
        refusal = GatewayError(
            "MANIFEST_UNKNOWN", f"the signed manifest {digest} of {name} is not in the registry"
        )
        return await self._fetch_or(scope, send, name, digest, refusal)

    async def _fetch_or(
        self, scope: Scope, send: Send | None, name: str, digest: str, missing: GatewayError
    ) -> _Fetched | None:
        """:meth:`_fetch_ref` by digest; *missing* is raised on 404, ``None`` returned when relayed."""
        fetched = await self._fetch_ref(scope, send, name, digest)
        if fetched is None:
            raise missing
        return fetched if isinstance(fetched, _Fetched) else None

    async def _fetch_ref(
        self, scope: Scope, send: Send | None, name: str, reference: str
    ) -> _Fetched | _Relayed | None:
        """GET ``name:reference`` upstream (a tag, or a digest the bytes are checked against).

        ``None`` on 404; :data:`_RELAYED` for an auth challenge or throttling (relayed to the client when
        *send* is given); any other non-200 answer is UPSTREAM_UNAVAILABLE.
        """
        headers = [
            (k, v) for k, v in forward_headers(scope) if k in (b"authorization", b"user-agent", b"cookie")
        ]
        # every manifest type: the bytes are checked against the signed digest, whatever their type
        headers.append((b"accept", _ACCEPT_ALL))
        cap = self.max_manifest_bytes
        async with self.proxy.get(f"/v2/{name}/manifests/{reference}", headers) as resp:
            if resp.status == 404:
                await resp.read(_ERROR_BODY_BYTES)  # read to the end, so that the connection can be reused
                return None
            if resp.status != 200:
                if resp.status in _RELAYED_STATUSES:
                    if send is not None:
                        await resp.relay(scope, send)
                    return _RELAYED
                raise GatewayError(
                    "UPSTREAM_UNAVAILABLE",
                    f"the registry answered {resp.status} for the manifest {reference} of {name}",
                )
            data = await resp.read(cap)
            if data is None:
                raise GatewayError(
                    "DENIED", f"the registry's manifest {reference} is larger than {cap} bytes"
                )
            content_type = resp.header("content-type")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in reference and actual != reference:
            raise GatewayError(
                "DENIED", f"the registry returned {actual} for the signed manifest {reference}"
            )
        return _Fetched(data, _manifest_type(data, content_type), actual)


# -- helpers ------------------------------------------------------------------------------------------------
def _no_trust(tag: str, view: TrustView) -> str:
    if not view.exists:
        return f"no valid trust data for {tag}: {view.gun} has no trust data"
    return f"no valid trust data for {tag}"


def _payload_digest(payload: bytes) -> str | None:
    """The image digest a simplesigning payload names (``critical.image.docker-manifest-digest``)."""
    document = json_object(payload)
    critical = document.get("critical") if document is not None else None
    image = critical.get("image") if isinstance(critical, dict) else None
    value = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    try:
        return validate_digest(value) if isinstance(value, str) else None
    except InvalidDigestError:
        return None


def _kind(fetched: _Fetched) -> Kind | None:
    """The kind of signature artifact fetched manifest bytes are, or ``None`` for content."""
    return classify(json_object(fetched.data), fetched.media_type)


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope["headers"]:
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return ""


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
