"""The signature-format decisions on manifests (:class:`FormatManifests`): repositories whose
:class:`~notar.gateway.formats.Requirement` names Notation or cosign signatures, all or any of them, with
or without v1.

A tag resolves to the digest the registry's tag points at now (with v1 and ``all``: to the v1 signed
digest), and that digest is served only when its signatures verify
(:class:`~notar.gateway.signatures.SignatureVerifier`) for every format (``all``) or one of them (``any``;
with v1 the signed digest is the fallback). By digest likewise; with ``allow_index_children`` the children
of an index whose signatures verified lately are served too. A PUT by tag needs the same of the uploaded
digest (sign first, then push the tag). The v1 part of a requirement is decided by
:mod:`notar.gateway.manifest_v1`.
"""

from __future__ import annotations

from typing import Final

from starlette.types import Scope, Send

from notar._lru import LRUCache
from notar.gateway.errors import GatewayError
from notar.gateway.formats import Format, Mode, Requirement
from notar.gateway.manifest_data import Fetched, ManifestRef, kind_of
from notar.gateway.manifest_fetch import RELAYED, ManifestFetcher
from notar.gateway.manifest_v1 import V1Manifests, no_trust
from notar.gateway.policy import TrustPolicy
from notar.gateway.signatures import SignatureVerifier
from notar.gateway.trust import TrustVerifier
from notar.notation import Descriptor
from notar.registry.manifest import INDEX_MEDIA_TYPES

__all__ = ["FormatManifests"]

_PARENTS_CACHE_SIZE: Final = 4096  # repositories (per format) with indexes verified lately
_PARENTS_PER_REPOSITORY: Final = 16


class FormatManifests:
    """Requirements checked with *signatures* (Notation, cosign) and *v1* (Docker Content Trust)."""

    def __init__(
        self,
        verifier: TrustVerifier,
        fetcher: ManifestFetcher,
        v1: V1Manifests,
        signatures: SignatureVerifier,
        *,
        policy: TrustPolicy,
    ) -> None:
        self.verifier = verifier
        self.fetcher = fetcher
        self.v1 = v1
        self.signatures = signatures
        self.policy = policy
        # (format, repository) -> indexes whose signatures verified lately, newest first: their children are
        # served by digest (allow_index_children), as v1 serves the children of a signed index
        self._parents: LRUCache[tuple[Format, str], tuple[Descriptor, ...]] = LRUCache(_PARENTS_CACHE_SIZE)

    # -- GET / HEAD -----------------------------------------------------------------------------------
    async def get_tag(
        self, scope: Scope, send: Send, ref: ManifestRef, tag: str, gun: str, req: Requirement
    ) -> Fetched | None:
        """A tag under formats: the registry's digest for it (or, with v1, the signed one) if it satisfies
        the repository's requirement *req*.

        ``all`` with v1: the signed digest, which must carry the other formats too. Without v1: the digest
        the registry's tag points at now. ``any`` with v1: the registry's digest if it satisfies one of the
        formats, else the v1 signed digest (as a v1-only gateway serves it).
        """
        v1 = Format.V1 in req.formats
        if v1 and req.mode is Mode.ALL:
            signed = await self.v1.signed_tag(gun, tag, await self.verifier.view(gun))
            pinned = await self.v1.fetch_signed(scope, send, ref.name, signed)
            if pinned is None:
                return None
            ok, why = await self.satisfied(scope, req, ref.name, gun, pinned, tag=tag)
            if ok:
                return pinned
            raise self.unsatisfied(ref, req, pinned.digest, why)
        reasons: list[str] = []
        current = await self.fetcher.fetch_ref(scope, send, ref.name, tag)
        if current is RELAYED:
            return None
        failure: GatewayError | None = None
        if isinstance(current, Fetched):
            try:
                ok, reasons = await self.satisfied(scope, req, ref.name, gun, current, tag=tag)
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
                return await self.v1.fetch_signed(scope, send, ref.name, fallback)
            if failure is not None:
                raise failure
            untrusted = f" and {no_trust(tag, view)}"
        if not isinstance(current, Fetched):
            raise GatewayError(
                "MANIFEST_UNKNOWN", f"{ref.name}:{tag} is not in the registry{untrusted}", detail={"Tag": tag}
            )
        raise self.unsatisfied(ref, req, current.digest, reasons)

    async def get_digest(
        self, scope: Scope, send: Send, ref: ManifestRef, gun: str, req: Requirement
    ) -> Fetched | None:
        assert ref.digest is not None
        refusal = GatewayError(
            "MANIFEST_UNKNOWN", f"{ref.digest} is not in the registry", detail={"Digest": ref.digest}
        )
        fetched = await self.fetcher.fetch_or(scope, send, ref.name, ref.digest, refusal)
        if fetched is None or kind_of(fetched) is not None:
            return fetched  # relayed, or a signature artifact
        ok, reasons = await self.satisfied(scope, req, ref.name, gun, fetched, tag=None)
        if ok:
            return fetched
        raise self.unsatisfied(ref, req, fetched.digest, reasons)

    # -- PUT ------------------------------------------------------------------------------------------
    async def check_put(
        self, scope: Scope, ref: ManifestRef, gun: str, pushed: Fetched, req: Requirement
    ) -> None:
        """A PUT of *pushed* by tag: DENIED unless it satisfies *req* (asked again on fresh data first)."""
        assert ref.tag is not None
        ok, reasons = await self.satisfied(scope, req, ref.name, gun, pushed, tag=ref.tag)
        if not ok:  # just signed? do not trust a stale cache
            ok, reasons = await self.satisfied(scope, req, ref.name, gun, pushed, tag=ref.tag, fresh=True)
        if not ok:
            raise GatewayError(
                "DENIED",
                f"{gun}:{ref.tag}: the uploaded manifest {pushed.digest} is not signed as {ref.name} requires "
                f"({req.describe()}): {'; '.join(reasons)}. Push the manifest by digest and sign it first",
                detail={"Tag": ref.tag, "Digest": pushed.digest},
            )

    # -- requirements ---------------------------------------------------------------------------------
    def unsatisfied(
        self, ref: ManifestRef, req: Requirement, digest: str, reasons: list[str]
    ) -> GatewayError:
        what = f"{ref.name}:{ref.tag} ({digest})" if ref.tag is not None else f"{ref.name}@{digest}"
        return GatewayError(
            "MANIFEST_UNKNOWN",
            f"{what} is not signed as {ref.name} requires ({req.describe()}): {'; '.join(reasons)}",
            detail={"Digest": digest, "Required": req.describe()} | ({"Tag": ref.tag} if ref.tag else {}),
        )

    async def satisfied(
        self,
        scope: Scope,
        req: Requirement,
        name: str,
        gun: str,
        fetched: Fetched,
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
        fetched: Fetched,
        *,
        tag: str | None,
        fresh: bool,
    ) -> tuple[bool, str]:
        if fmt is Format.V1:
            return await self.v1.holds(scope, name, gun, fetched, tag=tag, fresh=fresh)
        digest = fetched.digest
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
            below = await self.fetcher.descendants(scope, name, parent.digest)
            if below is None or digest not in below:
                continue
            check = await self.signatures.check(
                fmt, name, parent, keys=req.keys, headers=list(scope["headers"])
            )
            if check.verified:
                return parent
        return None
