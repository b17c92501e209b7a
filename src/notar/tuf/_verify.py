"""Verification rules shared by the client and the server (one implementation, notary's semantics)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from notar.crypto import CryptoError, PublicKey, certificate_problems
from notar.encoding import GoTime
from notar.tuf import roles
from notar.tuf._model import HASH_LENGTHS, Envelope, FileMeta, Root, Signed, Targets
from notar.tuf.errors import (
    ExpiredError,
    HashMismatchError,
    InvalidKeyIDError,
    NoSignaturesError,
    RoleError,
    RollbackError,
    RootError,
    TargetPathError,
    ThresholdError,
)

__all__ = [
    "RoleKeys",
    "TrustPinning",
    "check_expiry",
    "check_hashes",
    "check_targets_content",
    "check_version",
    "delegated_role_keys",
    "root_certificate_keys",
    "verify_root",
    "verify_signatures",
]


@dataclass(frozen=True, slots=True)
class RoleKeys:
    """The keys (by key ID) that may sign a role, and how many must."""

    name: str
    keys: Mapping[str, PublicKey]
    threshold: int
    paths: Sequence[str] | None = None  # delegations only: path prefixes the role may sign

    @classmethod
    def from_root(cls, root: Root, role: str) -> RoleKeys:
        if role not in root.roles:
            raise RoleError(f"tuf: invalid role {role}")
        keys, threshold = root.role_keys(role)
        return cls(role, keys, threshold)


def verify_signatures(envelope: Envelope[Any], role: RoleKeys) -> set[str]:
    """Check that distinct keys of *role* with valid signatures reach its threshold.

    Signatures by keys outside the role are skipped; a signature whose key ID does not match the key's
    content is a hard error, as in notary. Returns the key IDs whose signatures are valid.
    """
    if not envelope.signatures:
        raise NoSignaturesError()
    if role.threshold < 1:
        raise ThresholdError(role.name)
    valid: set[str] = set()
    for sig in envelope.signatures:
        key = role.keys.get(sig.keyid)
        if key is None:
            continue
        if key.key_id != sig.keyid:
            raise InvalidKeyIDError()
        if sig.keyid not in valid and key.verify(envelope.signed_bytes, sig.sig, sig.method):
            valid.add(sig.keyid)
    if len(valid) < role.threshold:
        raise ThresholdError(role.name)
    return valid


def check_targets_content(targets: Targets, role: RoleKeys) -> None:
    """What notary's client never writes into a targets file, and no Go reader would use.

    * Targets of a delegated role outside its paths (``role.paths``, already intersected with its
      ancestors'): notary's client only adds targets inside them and every reader skips the others.
    * A delegation key listed under an ID that is not its content's ID: notary's client computes the ID
      from the key, and for Go clients a signature by it is a hard ``key ID is not valid for key content``.
    * A delegation listed twice (notary's client replaces an entry, never adds a second one): readers could
      pick different entries, and a walk that follows both would double at every level.

    The server refuses such uploads (they could only ever be shown by a reader that forgets a rule).
    """
    if role.paths is not None and role.name != roles.TARGETS:
        allowed = tuple(role.paths)
        for name in targets.targets:
            if not name.startswith(allowed):
                raise TargetPathError(
                    f"{role.name} is not allowed to sign target {name!r}: outside its delegated paths"
                )
    for kid, key in targets.delegations.keys.items():
        if key.key_id != kid:
            raise InvalidKeyIDError(f"delegation key {kid}: key ID is not valid for key content")
    seen: set[str] = set()
    for delegated in targets.delegations.roles:
        if delegated.name in seen:
            raise RoleError(f"{role.name} lists the delegation {delegated.name} more than once")
        seen.add(delegated.name)


def check_expiry(signed: Signed, now: GoTime, role: str) -> None:
    """Raise :class:`ExpiredError` when *signed* expired before *now*."""
    if signed.expires < now:
        raise ExpiredError(role, signed.expires.format_go_error())


def check_version(signed: Signed, minimum: int, role: str) -> None:
    """Raise :class:`RollbackError` when the version is below *minimum* (rollback protection)."""
    if signed.version < minimum:
        raise RollbackError(f"version {signed.version} is lower than current version {minimum} for {role}")


def check_hashes(data: bytes, meta: FileMeta, role: str, *, check_length: bool = False) -> None:
    """Check *data* against every known hash in *meta* (at least one must be present)."""
    known = [alg for alg in HASH_LENGTHS if alg in meta.hashes]
    if not known:
        raise HashMismatchError(f"no checksums for supported algorithms were provided for {role}", role=role)
    if check_length and len(data) != meta.length:
        raise HashMismatchError(f"length of {role} is {len(data)}, expected {meta.length}", role=role)
    for alg in known:
        expected = meta.hashes[alg]
        if not hmac.compare_digest(hashlib.new(alg, data).digest(), expected):
            raise HashMismatchError(
                f"{alg} checksum for {role} did not match: expected {expected.hex()}", role=role
            )


# -- root trust -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrustPinning:
    """How the first root of a GUN is trusted (notary's ``trust_pinning``).

    ``certs`` maps a GUN (or ``prefix*``) to the TUF key IDs of root certificates that must sign it;
    without a matching entry the first root is trusted on first use unless ``disable_tofu`` is set.
    """

    certs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    disable_tofu: bool = False

    def pinned_ids(self, gun: str) -> Sequence[str] | None:
        if gun in self.certs:
            return self.certs[gun]
        best: tuple[int, Sequence[str]] | None = None
        for pattern, ids in self.certs.items():
            wildcard = pattern.endswith("*") and gun.startswith(pattern[:-1])
            if wildcard and (best is None or len(pattern) > best[0]):
                best = (len(pattern), ids)
        return best[1] if best else None


def _split_bundle(key: PublicKey) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
    try:
        certs = key.certificates()
    except CryptoError:
        return None
    leaves = [c for c in certs if not _is_ca(c)]
    if len(leaves) != 1:
        return None
    return leaves[0], [c for c in certs if _is_ca(c)]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
    except ValueError:  # extensions are parsed lazily; a malformed one is not a CA marker we can trust
        return True


def root_certificate_keys(root: Root, gun: str, *, now: GoTime | None) -> dict[str, PublicKey]:
    """The root role's usable certificate keys, rebuilt from the parsed certificates as notary does.

    A key counts when it holds exactly one leaf certificate whose CN matches *gun* and that passes
    notary's certificate checks (expiry only when *now* is given). Each key is re-encoded from the
    certificates (leaf, then valid intermediates), so its ID must equal the one the signatures use.
    """
    when = now.to_datetime() if now is not None else None
    out: dict[str, PublicKey] = {}
    for kid in root.roles[roles.ROOT].keyids:
        key = root.keys.get(kid)
        if key is None or not key.is_certificate:
            continue
        split = _split_bundle(key)
        if split is None:
            continue
        leaf, intermediates = split
        try:
            if certificate_problems(leaf, now=when, gun=gun):
                continue
            good_ints = [c for c in intermediates if not certificate_problems(c, now=when)]
            rebuilt = PublicKey.from_certificate(leaf, *good_ints)
        except (CryptoError, ValueError):  # malformed certificate content: not a usable key
            continue
        out[rebuilt.key_id] = rebuilt
    return out


def verify_root(
    envelope: Envelope[Root],
    gun: str,
    *,
    trusted: Root | None = None,
    now: GoTime | None = None,
    pinning: TrustPinning | None = None,
) -> None:
    """Notary's ``ValidateRoot``: may *envelope* be trusted as the root of *gun*?

    * With a *trusted* (previous) root, the new root must be signed by a threshold of the previous
      root's certificate keys (their expiry is not checked).
    * Without one, trust pinning decides (pinned certificate IDs, else trust on first use).
    * Always, the new root must be signed by a threshold of its own valid (unexpired when *now* is
      given), CN-matching certificate keys.
    """
    root = envelope.signed
    if trusted is not None:
        prev_keys = root_certificate_keys(trusted, gun, now=None)
        try:
            verify_signatures(envelope, RoleKeys(roles.ROOT, prev_keys, trusted.roles[roles.ROOT].threshold))
        except (ThresholdError, NoSignaturesError, InvalidKeyIDError) as e:
            raise RootError(
                "could not rotate trust to a new trusted root: "
                f"failed to validate data with current trusted certificates ({e})"
            ) from e
    own = root_certificate_keys(root, gun, now=now)
    if not own:
        raise RootError(
            "could not validate the path to a trusted root: unable to retrieve valid leaf certificates"
        )
    if trusted is None and pinning is not None:
        pinned = pinning.pinned_ids(gun)
        if pinned is not None:
            own = {kid: k for kid, k in own.items() if kid in set(pinned)}
            if not own:
                raise RootError(
                    "could not validate the path to a trusted root: "
                    "unable to match any certificates to trust_pinning config"
                )
        elif pinning.disable_tofu:
            raise RootError(
                "could not validate the path to a trusted root: "
                f"trust on first use is disabled and no certificate is pinned for {gun}"
            )
    try:
        verify_signatures(envelope, RoleKeys(roles.ROOT, own, root.roles[roles.ROOT].threshold))
    except (ThresholdError, NoSignaturesError, InvalidKeyIDError) as e:
        raise RootError(
            f"could not validate the path to a trusted root: failed to validate integrity of roots ({e})"
        ) from e


# -- delegations ---------------------------------------------------------------------------------------
def delegated_role_keys(role: str, targets_by_role: Mapping[str, Targets]) -> RoleKeys:
    """Find delegation *role* by walking from ``targets`` through each ancestor's delegations.

    *targets_by_role* holds the already trusted targets files by role name. The returned paths are
    those of the delegation entry intersected with every ancestor's (notary restricts children to
    their parents' paths).
    """
    if not roles.is_delegation(role):
        raise RoleError(f"tuf: invalid role {role}")
    parts = role.split("/")
    paths: list[str] | None = None
    entry = None
    parent = None
    for depth in range(2, len(parts) + 1):
        parent = "/".join(parts[: depth - 1])
        name = "/".join(parts[:depth])
        parent_targets = targets_by_role.get(parent)
        if parent_targets is None:
            raise RoleError(f"tuf: invalid role {role}. delegation does not exist")
        entry = parent_targets.delegations.role(name)
        if entry is None:
            raise RoleError(f"tuf: invalid role {role}. delegation does not exist")
        mine = list(entry.paths)
        paths = mine if paths is None else [p for p in mine if any(p.startswith(q) for q in paths)]
    assert entry is not None and parent is not None
    delegations = targets_by_role[parent].delegations
    keys = {kid: delegations.keys[kid] for kid in entry.keyids if kid in delegations.keys}
    return RoleKeys(role, keys, entry.threshold, paths or [])
