"""The Docker Content Trust (v1) decisions on manifests (:class:`V1Manifests`), against the verified trust
data of a GUN:

* GET/HEAD by tag: the manifest of the *signed* digest, fetched upstream by digest and checked against
  the signed sha256 and length (moving the tag in the registry changes nothing);
* GET/HEAD by digest: only a digest some signed tag resolves to, or (``allow_index_children``) a manifest
  listed in a signed index; signature artifacts pass, judged on their bytes;
* PUT by tag: only when the trust data already signs that tag as the sha256 of the exact body;
* DELETE: refused while a signed tag (or a signed index) still points at the manifest.

Also what v1 contributes to a requirement with other formats (:meth:`V1Manifests.holds`), used by
:mod:`notar.gateway.manifest_formats`.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from notar.gateway.errors import GatewayError
from notar.gateway.manifest_data import Fetched, ManifestRef, kind_of
from notar.gateway.manifest_fetch import ManifestFetcher
from notar.gateway.policy import TrustPolicy
from notar.gateway.trust import SignedTag, TrustVerifier, TrustView

__all__ = ["V1Manifests", "no_trust"]


class V1Manifests:
    """v1 decisions with the trust data of *verifier*; manifests read through *fetcher*."""

    def __init__(self, verifier: TrustVerifier, fetcher: ManifestFetcher, *, policy: TrustPolicy) -> None:
        self.verifier = verifier
        self.fetcher = fetcher
        self.policy = policy

    async def get(self, scope: Scope, send: Send, ref: ManifestRef, gun: str) -> Fetched | None:
        """Docker Content Trust only: a tag is its signed digest, a digest must be signed (or a signature)."""
        view = await self.verifier.view(gun)
        if ref.tag is not None:
            signed = await self.signed_tag(gun, ref.tag, view)
            return await self.fetch_signed(scope, send, ref.name, signed)
        assert ref.digest is not None
        if await self.digest_allowed(scope, ref.name, ref.digest, view):
            return await self.fetcher.fetch_recent(scope, send, ref.name, ref.digest)
        refusal = GatewayError(
            "MANIFEST_UNKNOWN",
            f"no valid trust data for {ref.digest}: no signed tag of {gun} points at it",
            detail={"Digest": ref.digest},
        )
        fetched = await self.fetcher.fetch_or(scope, send, ref.name, ref.digest, refusal)
        if fetched is not None and kind_of(fetched) is None:
            raise refusal
        return fetched  # a signature artifact: served unsigned, it carries no content

    async def signed_tag(self, gun: str, tag: str, view: TrustView) -> SignedTag:
        """The v1 signed digest of *tag* (MANIFEST_UNKNOWN when there is none)."""
        signed = view.tags.get(tag)
        if signed is None:
            # a refusal is decided on data at most a second old, so a tag signed just now is served
            # at once; at most one refresh per second per repository however often it is asked for
            view = await self.verifier.view(gun, max_age=1.0)
            signed = view.tags.get(tag)
        if signed is None:
            raise GatewayError("MANIFEST_UNKNOWN", no_trust(tag, view), detail={"Tag": tag})
        return signed

    async def fetch_signed(self, scope: Scope, send: Send, name: str, signed: SignedTag) -> Fetched | None:
        fetched = await self.fetcher.fetch_recent(scope, send, name, signed.digest)
        if fetched is not None and len(fetched.data) != signed.size:
            raise GatewayError(
                "DENIED",
                f"the registry's manifest {signed.digest} is {len(fetched.data)} bytes, the signed size is "
                f"{signed.size}",
            )
        return fetched

    async def holds(
        self, scope: Scope, name: str, gun: str, fetched: Fetched, *, tag: str | None, fresh: bool
    ) -> tuple[bool, str]:
        """Whether *fetched* (under *tag*, or by digest) is v1 signed, and why not."""
        digest = fetched.digest
        for attempt in range(2):
            if fresh:
                view = await self.verifier.view(gun, fresh=True)
            else:
                view = await self.verifier.view(gun, max_age=1.0 if attempt else None)
            if tag is not None:
                signed = view.tags.get(tag)
                if signed is not None and signed.digest == digest and signed.size == len(fetched.data):
                    return True, ""
                why = f"v1: {tag} is signed as {signed.digest}" if signed else f"v1: {no_trust(tag, view)}"
            elif await self.digest_allowed(scope, name, digest, view):
                return True, ""
            else:
                why = f"v1: no signed tag of {gun} points at it"
            if fresh:
                break
        return False, why

    async def check_put(self, gun: str, tag: str, digest: str) -> None:
        """A PUT of *digest* by *tag*: DENIED unless the trust data signs *tag* as *digest*."""
        view = await self.verifier.view(gun)
        signed = view.tags.get(tag)
        if signed is None or signed.digest != digest:
            view = await self.verifier.view(gun, fresh=True)  # just signed? do not trust a stale cache
            signed = view.tags.get(tag)
        if signed is None or signed.digest != digest:
            now = f"signed as {signed.digest}" if signed is not None else "not signed"
            raise GatewayError(
                "DENIED",
                f"{gun}:{tag} is {now}, the uploaded manifest is {digest}: push the manifest by digest "
                "and sign the tag first (`notar sign`), or use `notar push`",
                detail={"Tag": tag, "Digest": digest},
            )

    async def check_delete(self, scope: Scope, ref: ManifestRef, gun: str) -> None:
        """A DELETE: DENIED while a signed tag (or a signed index) points at the manifest."""
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
            if tags or await self.digest_allowed(scope, ref.name, ref.digest, view, deleting=True):
                by = f"signed tag(s) {', '.join(tags)}" if tags else "a signed index"
                raise GatewayError(
                    "DENIED",
                    f"{ref.digest} is still referenced by {by} of {gun}: revoke first (`notar revoke`)",
                )

    async def digest_allowed(
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
            below = await self.fetcher.descendants(scope, name, parent)
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


def no_trust(tag: str, view: TrustView) -> str:
    if not view.exists:
        return f"no valid trust data for {tag}: {view.gun} has no trust data"
    return f"no valid trust data for {tag}"
