"""Signature artifacts themselves, in every trust-enabled repository (:class:`SignatureArtifacts`; what
they are: :mod:`notar.registry.artifacts`):

* served: referrers indexes (``sha256-<hex>`` tags) and cosign ``.sig`` manifests -- judged on their
  bytes, so no image passes as one (signature manifests by digest: :mod:`notar.gateway.manifest_v1`,
  :mod:`notar.gateway.manifest_formats`);
* pushed: a ``sha256-<hex>`` tag only as a referrers index that keeps every entry of the current one and
  whose new entries are signature manifests of ``<hex>``; a ``.sig`` tag only as a cosign manifest that keeps
  every current layer and whose new payloads name ``<hex>`` (one such PUT at a time per tag);
* never deleted while referenced: a signature manifest listed among its subject's referrers, the current
  ``.sig`` manifest or referrers index of an image.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from starlette.types import Receive, Scope, Send

from notar.gateway.errors import GatewayError
from notar.gateway.manifest_data import Fetched, ManifestRef, kind_of, manifest_type, request_header
from notar.gateway.manifest_fetch import RELAYED, ManifestFetcher
from notar.gateway.proxy import UpstreamProxy
from notar.gateway.signatures import ReadProblem, SignatureVerifier, UpstreamReads, credentials
from notar.registry import InvalidDigestError, validate_digest
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
from notar.registry.manifest import json_object
from notar.registry.referrers import cosign_signature_tag, referrers_tag

__all__ = ["Absent", "SignatureArtifacts"]

_MAX_PROBES: Final = 100  # entries (layers) read to find what a signature document refers to
_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
# what each signature tag must hold
_TAG_HOLDS: Final = {TagKind.REFERRERS: Kind.REFERRERS_INDEX, TagKind.COSIGN: Kind.COSIGN}


class Absent(GatewayError):
    """A signature tag that does not exist (yet): answered 404 like the registry would, logged quietly."""


class SignatureArtifacts:
    """Signature tags and documents of *proxy*'s registry, read through *fetcher* and *reads*; what is
    pushed is made known to *signatures* at once."""

    def __init__(
        self,
        proxy: UpstreamProxy,
        fetcher: ManifestFetcher,
        reads: UpstreamReads,
        signatures: SignatureVerifier,
    ) -> None:
        self.proxy = proxy
        self.fetcher = fetcher
        self.reads = reads
        self.signatures = signatures
        self._tag_locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- GET / HEAD -----------------------------------------------------------------------------------
    async def get_tag(self, scope: Scope, send: Send, ref: ManifestRef) -> Fetched | None:
        """``sha256-<hex>`` (referrers index) or ``sha256-<hex>.sig`` (cosign): what the registry holds,
        if it is what such a tag holds; never content."""
        assert ref.tag is not None
        found = signature_tag(ref.tag)
        assert found is not None
        tag_kind = found[0]
        fetched = await self.fetcher.fetch_ref(scope, send, ref.name, ref.tag)
        if fetched is RELAYED:
            return None
        if fetched is None:  # no signatures yet: what every signer asks first, not a refusal
            raise Absent(
                "MANIFEST_UNKNOWN", f"{ref.name}:{ref.tag} is not in the registry", detail={"Tag": ref.tag}
            )
        assert isinstance(fetched, Fetched)
        kind = kind_of(fetched)
        if kind is not _TAG_HOLDS[tag_kind]:
            raise GatewayError(
                "MANIFEST_UNKNOWN",
                f"{ref.name}:{ref.tag} is a {tag_kind} tag, but the registry holds "
                f"{'a ' + str(kind) if kind else 'content'} ({fetched.digest}) under it: not served",
                detail={"Tag": ref.tag, "Digest": fetched.digest},
            )
        return fetched

    # -- PUT ------------------------------------------------------------------------------------------
    def pushed_by_digest(self, scope: Scope, name: str, body: bytes) -> None:
        """After a PUT by digest: a signature artifact with a ``subject`` is listed by a referrers API now."""
        pushed = Fetched(body, manifest_type(body, request_header(scope, b"content-type")), "")
        parsed = json_object(body)
        subject = subject_of(parsed) if parsed is not None and kind_of(pushed) is not None else None
        if subject is not None:  # a referrers API lists it now
            self.signatures.forget(name, subject)

    async def put_tag(
        self, scope: Scope, receive: Receive, send: Send, ref: ManifestRef, body: bytes
    ) -> None:
        """A new referrers index or ``.sig`` manifest: accepted when it is one, and keeps every entry (layer)
        of the one it replaces. One such PUT at a time per tag through this gateway."""
        assert ref.tag is not None
        found = signature_tag(ref.tag)
        assert found is not None
        tag_kind = found[0]
        new = Fetched(body, manifest_type(body, request_header(scope, b"content-type")), "")
        kind = kind_of(new)
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
            current = await self.fetcher.fetch_ref(scope, send, ref.name, ref.tag)
            if current is RELAYED:
                return
            now = json_object(body)
            assert now is not None
            kept = (
                json_object(current.data)
                if isinstance(current, Fetched) and kind_of(current) is kind
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
    async def refuse_if_referenced(self, scope: Scope, name: str, fetched: Fetched) -> None:
        """DENIED when *fetched* is a signature artifact that something still refers to: listed among its
        subject's referrers, or the current manifest of a ``sha256-<hex>`` / ``.sig`` tag of an image it
        names. What it names is read from all its entries (layers), not the first: one planted entry must
        not make a shared document deletable. When that cannot be told, refused too (fail closed)."""
        kind = kind_of(fetched)
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
