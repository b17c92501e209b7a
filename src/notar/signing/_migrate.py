"""Migration off Notary v1: sign, in Notation or cosign, exactly the digests valid v1 trust data vouches for.

The input is a :class:`notar.client.TrustedRepo` -- trust data the client's :class:`~notar.client.Updater`
fetched and verified now (root, timestamp and snapshot checked for signatures, versions and expiry;
delegations that are expired or badly signed are ignored with their tags). Only what it resolves by
docker's rule (``targets/releases``, else ``targets``: :meth:`TrustedRepo.signed_tags`) is signed; the
digest and length come from the trust data, never from the registry's tag (which may have moved), and
the manifest is fetched by that digest (verified) for its media type and checked against the length.

Per tag, one :class:`MigrationItem`:

* ``signed`` -- signed now (or ``would-sign`` in a dry run);
* ``skipped`` -- with the reason: already signed by the same certificate / key (a signature that
  verifies, :mod:`notar.signing._existing`), not vouched for by v1 (revoked, never signed, only in a
  role docker ignores, or in a role that is not valid now), or the signed manifest is not in the
  registry;
* ``failed`` -- the registry or the signer failed for that tag.

Registry tags that v1 does not vouch for are listed too (``skipped``), so the report covers the whole
repository; the signature tags (``sha256-<hex>``, ``sha256-<hex>.sig`` ...) are not.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from notar.client import TrustedRepo
from notar.errors import NotarError
from notar.registry import ManifestNotFoundError, Reference, RegistryClient, RegistryError
from notar.signing._cosign import cosign_docker_reference
from notar.signing._existing import cosign_signature_by, notation_signature_by
from notar.signing._keys import SigningKey
from notar.signing._model import Format, FormatSigner, Status, Subject

__all__ = ["MigrationItem", "MigrationStatus", "is_signature_tag", "migrate"]

_SIGNATURE_TAG = re.compile(r"sha(?:256|512)-[0-9a-f]{64}(?:\.[a-z]+)?\Z")


def is_signature_tag(tag: str) -> bool:
    """A tag that holds signatures, not an image: ``sha256-<hex>`` (referrers) and ``sha256-<hex>.sig`` etc."""
    return _SIGNATURE_TAG.match(tag) is not None


class MigrationStatus(StrEnum):
    SIGNED = "signed"
    WOULD_SIGN = "would-sign"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class MigrationItem:
    """The report line of one tag."""

    tag: str
    status: MigrationStatus
    reason: str | None = None
    digest: str | None = None
    role: str | None = None  # the v1 role that vouches for the digest
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, repository: str, fmt: Format) -> dict[str, Any]:
        out: dict[str, Any] = {
            "repository": repository,
            "tag": self.tag,
            "digest": self.digest,
            "format": fmt.value,
            "status": self.status.value,
            "reason": self.reason,
            "v1_role": self.role,
        }
        out.update(self.detail)
        return out


def _not_vouched(trusted: TrustedRepo, tag: str) -> str:
    elsewhere = [role for role in trusted.role_order() if trusted.find(tag, role) is not None]
    if elsewhere:
        return (
            f"not vouched for by Notary v1: signed only in {', '.join(elsewhere)}, which docker does not "
            "trust (targets/releases or targets)"
        )
    why = "not vouched for by Notary v1: unsigned or revoked"
    if trusted.ignored:
        ignored = "; ".join(f"{role}: {reason}" for role, reason in sorted(trusted.ignored.items()))
        why += f", or signed in a role that is not valid now ({ignored})"
    return why


def migrate(
    trusted: TrustedRepo,
    client: RegistryClient,
    ref: Reference,
    key: SigningKey,
    fmt: Format,
    signer: FormatSigner | None,
    *,
    registry_tags: Sequence[str] = (),
    now: Callable[[], datetime],
) -> list[MigrationItem]:
    """Sign every digest *trusted* vouches for (only ``ref.tag`` when it has one) with *signer*.

    *signer* is the Notation or cosign format signer made with *key*; ``None`` is a dry run (nothing is
    written; what would be signed is ``would-sign``). *registry_tags* are the repository's tags, to
    report those v1 does not vouch for. Raises only for what stops the whole migration (the key has
    no certificate for Notation); per-tag problems are items.
    """
    if fmt not in (Format.NOTATION, Format.COSIGN):
        raise ValueError(f"migration writes notation or cosign signatures, not {fmt}")
    leaf = key.require_chain()[0] if fmt is Format.NOTATION else None
    docker_reference = cosign_docker_reference(ref)
    vouched = trusted.signed_tags()
    wanted = [ref.tag] if ref.tag is not None else sorted(vouched)
    items: dict[str, MigrationItem] = {}
    todo: list[tuple[Subject, str]] = []
    for tag in wanted:
        match = vouched.get(tag)
        if match is None:
            items[tag] = MigrationItem(tag, MigrationStatus.SKIPPED, _not_vouched(trusted, tag))
            continue
        digest = "sha256:" + match.meta.hashes["sha256"].hex()
        base = MigrationItem(tag, MigrationStatus.SKIPPED, digest=digest, role=match.role)
        try:
            manifest = client.get_manifest(ref.path, digest)
        except ManifestNotFoundError:
            items[tag] = dataclasses.replace(
                base, reason=f"Notary v1 signs {digest}, which is not in the registry"
            )
            continue
        except RegistryError as e:
            items[tag] = dataclasses.replace(base, status=MigrationStatus.FAILED, reason=str(e))
            continue
        if manifest.size != match.meta.length:
            items[tag] = dataclasses.replace(
                base,
                reason=f"Notary v1 signs {digest} as {match.meta.length} bytes, the registry's is {manifest.size}",
            )
            continue
        subject = Subject(dataclasses.replace(ref, tag=tag, digest=None), manifest.descriptor)
        try:
            if leaf is not None:
                existing = notation_signature_by(client, ref.path, subject.descriptor, leaf, now=now())
            else:
                existing = cosign_signature_by(
                    client, ref.path, digest, key.signer.public_key, docker_reference=docker_reference
                )
        except NotarError as e:
            items[tag] = dataclasses.replace(
                base, status=MigrationStatus.FAILED, reason=f"cannot read its signatures: {e}"
            )
            continue
        if existing is not None:
            who = "certificate" if leaf is not None else "key"
            items[tag] = dataclasses.replace(
                base, reason=f"already signed by the same {who}", detail={"signature": existing}
            )
            continue
        todo.append((subject, match.role))
    if signer is None:
        for subject, role in todo:
            assert subject.tag is not None
            items[subject.tag] = MigrationItem(
                subject.tag, MigrationStatus.WOULD_SIGN, digest=subject.digest, role=role
            )
    elif todo:
        outcomes = signer.sign([subject for subject, _ in todo])
        for (subject, role), outcome in zip(todo, outcomes, strict=True):
            assert subject.tag is not None
            status = MigrationStatus.SIGNED if outcome.status is Status.SIGNED else MigrationStatus.FAILED
            items[subject.tag] = MigrationItem(
                subject.tag, status, outcome.error, subject.digest, role, dict(outcome.detail)
            )
    if ref.tag is None:
        for tag in sorted(registry_tags):
            if tag not in items and not is_signature_tag(tag):
                items[tag] = MigrationItem(tag, MigrationStatus.SKIPPED, _not_vouched(trusted, tag))
    return sorted(items.values(), key=lambda item: item.tag)
