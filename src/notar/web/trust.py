"""What the UI says about a repository, computed by the client's own verification code.

Every view starts from nothing: a :class:`notar.client.Updater` with an empty in-memory cache reads the
repository from the server's own :class:`~notar.server.service.TrustService` (:class:`ServiceSource`, the
same read methods the HTTP handlers call, with the client's size caps and errors) and verifies it exactly
as ``notar resolve`` / ``docker trust`` would. A tag's status comes from ``TrustedRepo.resolve`` on that
verified view; nothing about trust is cached between requests.

Statuses of a tag:

* ``signed``   -- resolves in the verified data (``targets/releases`` wins over ``targets``, docker's rule);
                  with a registry, its tag points at the signed digest (or the tag is not in the registry).
* ``stale``    -- resolves, but the registry's tag now points at another digest than the signed one.
* ``unsigned`` -- does not resolve; the tag exists in the registry (or only in a delegation docker ignores).
* ``revoked``  -- does not resolve now, but an older stored version of ``targets/releases`` or ``targets``
                  (the roles docker trusts) listed it: it was signed and is not any more. Old versions are
                  history, not trust: "revoked" never makes a tag trusted.
* ``expired``  -- the trust data that would sign it has expired (the whole repository, or its role).
* ``invalid``  -- the trust data that would sign it fails verification (the whole repository, or its role).

With a registry, each tag the registry has also shows its Notation and cosign signatures (of the digest the
registry's tag points at), judged by :class:`~notar.web.signatures.SignatureReader` under the server's
trust policy and cosign keys when configured. Signature tags (``sha256-<hex>``, ``sha256-<hex>.sig``) are
signatures, not tags of content: they are not listed as tags.

Size: the UI's whole view model (tag statuses, signer attribution, history, registry comparison,
OCI signatures) computed from one verified view; the templates only print it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from notar._lru import LRUCache
from notar.client import (
    RELEASES,
    ClientError,
    MemoryCache,
    NotSignedError,
    RepositoryNotFoundError,
    TrustedRepo,
    TrustServerError,
    Updater,
    inspect_data,
)
from notar.client.inspect import natural_key
from notar.client.sources import metadata_name, not_found, too_large
from notar.notation import Descriptor as SignedDescriptor
from notar.registry import Descriptor, ManifestNotFoundError, RegistryClient, RegistryError
from notar.registry import RepositoryNotFoundError as RegistryRepoNotFoundError
from notar.registry.artifacts import signature_tag
from notar.server.errors import ServerError
from notar.server.service import TrustService
from notar.tuf import ExpiredError, roles
from notar.web.signatures import SignatureReader, TagSignatures

__all__ = [
    "STATUS_LABELS",
    "RegistryView",
    "RepoView",
    "ServiceSource",
    "SignerRef",
    "TagRow",
    "TrustReader",
    "registry_repository",
]

log = logging.getLogger("notar.web")

Status = Literal["signed", "stale", "unsigned", "revoked", "expired", "invalid"]
State = Literal["ok", "expired", "invalid"]

STATUS_LABELS: Mapping[str, str] = {
    "signed": "Signed",
    "stale": "Signed but stale",
    "unsigned": "Unsigned",
    "revoked": "Revoked",
    "expired": "Expired trust data",
    "invalid": "Invalid trust data",
}
TRUSTED_ROLES = (RELEASES, roles.TARGETS)  # the roles docker resolves tags from, in priority order
_NAMES_CACHE_SIZE = 256  # parsed target names of stored files, by content hash
HISTORY_VERSIONS = 50  # how many older versions of each trusted role are searched for revoked tags


class ServiceSource:
    """The client's :class:`~notar.client.MetadataSource` over a :class:`TrustService`, in process.

    The same service methods the HTTP handlers call, so the client sees exactly what a remote client
    would (including the server re-signing an expired timestamp), with the client's size caps and errors.
    """

    url = "this server"

    def __init__(self, service: TrustService) -> None:
        self.service = service

    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        name = metadata_name(role, checksum=checksum, version=version)
        try:
            if checksum is not None:
                meta = self.service.by_checksum(gun, role, checksum)
            elif version is not None:
                meta = self.service.by_version(gun, role, version)
            else:
                meta = self.service.current(gun, role)
        except ServerError as e:
            if e.status == 404:
                raise not_found(
                    gun, role, name, self.url, current=checksum is None and version is None
                ) from e
            raise TrustServerError(f"fetch {name} of {gun}: {e}") from e
        if len(meta.data) > max_bytes:
            raise too_large(name, max_bytes)
        return meta.data


def registry_repository(gun: str) -> str:
    """The registry repository of a GUN: the GUN without its registry host (``host:5000/a/b`` -> ``a/b``)."""
    first, sep, rest = gun.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return rest
    return gun


# ------------------------------------------------------------------------------------------ view types
@dataclass(frozen=True, slots=True)
class SignerRef:
    # "Repo Admin" for the repository (targets) key, else the delegation's signer name; for a tag, "releases"
    # stands for keys of targets/releases that belong to no named signer
    name: str
    role: str  # "targets" or "targets/<name>"
    key_ids: tuple[str, ...]  # for a tag: only the keys with valid signatures on the role it resolved from


@dataclass(slots=True)
class TagRow:
    tag: str
    status: Status
    digest: str | None = None  # the signed digest ("sha256:..."), when trust data names one
    registry_digest: str | None = None  # what the registry's tag points at now
    role: str | None = None  # the role the digest was resolved from
    signers: list[SignerRef] = field(default_factory=list)
    note: str = ""
    signatures: TagSignatures | None = None  # Notation / cosign, of the registry's digest (with a reader)

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "status": self.status,
            "label": self.label,
            "digest": self.digest,
            "registry_digest": self.registry_digest,
            "role": self.role,
            "signers": [{"name": s.name, "role": s.role, "key_ids": list(s.key_ids)} for s in self.signers],
            "note": self.note,
            "signatures": self.signatures.to_json() if self.signatures is not None else None,
        }


@dataclass(slots=True)
class RegistryView:
    url: str
    repository: str
    digests: dict[str, str | None] = field(default_factory=dict)  # tag -> digest (None: unreadable)
    error: str | None = None
    descriptors: dict[str, Descriptor] = field(default_factory=dict)  # tag -> media type, digest, size


@dataclass(slots=True)
class RepoView:
    gun: str
    state: State
    problem: str = ""
    tags: list[TagRow] = field(default_factory=list)
    root_keys: list[str] = field(default_factory=list)
    repository_keys: list[str] = field(default_factory=list)
    server_keys: dict[str, list[str]] = field(default_factory=dict)  # snapshot/timestamp key IDs
    signers: list[SignerRef] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # delegation -> why it is not trusted
    versions: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # role -> (version, expires)
    changes: list[dict[str, Any]] = field(default_factory=list)
    registry: RegistryView | None = None
    # what Notation / cosign signatures are verified with ({"notation": source, "cosign_keys": [...]});
    # None when signatures are not shown (no registry)
    signature_policy: dict[str, Any] | None = None

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUS_LABELS, 0)
        for row in self.tags:
            out[row.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        reg = self.registry
        return {
            "gun": self.gun,
            "state": self.state,
            "problem": self.problem,
            "counts": self.counts(),
            "tags": [t.to_json() for t in self.tags],
            "administrative_keys": {"root": self.root_keys, "repository": self.repository_keys},
            "server_keys": self.server_keys,
            "signers": [{"name": s.name, "role": s.role, "key_ids": list(s.key_ids)} for s in self.signers],
            "ignored_delegations": self.ignored,
            "versions": {r: {"version": v, "expires": e.isoformat()} for r, (v, e) in self.versions.items()},
            "changes": self.changes,
            "registry": None
            if reg is None
            else {"url": reg.url, "repository": reg.repository, "error": reg.error},
            "signature_policy": self.signature_policy,
        }


@dataclass(frozen=True, slots=True)
class RepoSummaryView:
    gun: str
    state: State
    signed_tags: int
    updated_at: datetime
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "gun": self.gun,
            "state": self.state,
            "signed_tags": self.signed_tags,
            "updated_at": self.updated_at.isoformat(),
            "problem": self.problem,
        }


# ------------------------------------------------------------------------------------------ the reader
def _expired(error: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if isinstance(e, ExpiredError):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _target_names(data: bytes) -> dict[str, str | None]:
    """Target name -> claimed sha256 hex of an (unverified) targets file; {} if it does not parse."""
    try:
        targets = json.loads(data)["signed"]["targets"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return {}
    if not isinstance(targets, dict):
        return {}
    out: dict[str, str | None] = {}
    for name, meta in targets.items():
        digest = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            digest = base64.b64decode(meta["hashes"]["sha256"]).hex()
        out[str(name)] = digest
    return out


def _role_signers(repo: TrustedRepo, role: str) -> list[SignerRef]:
    """Who signed the current file of verified *role*, computed from its signatures.

    Each key with a valid signature on the role is named after the delegation ``targets/<name>`` whose keys
    include it (docker's signers); keys of no named signer are listed under "Repo Admin" for ``targets``
    and under the role's own name (``releases``) for a delegation. Delegation key IDs are canonical IDs (as
    in the list of signers), the repository's are its key IDs in root (as in the administrative keys).
    """
    valid = repo.signed_by(role)
    signed = {key.canonical_key_id for key in valid.values()}
    named: dict[str, set[str]] = {}
    for entry, keys in repo.delegations():
        if entry.name in (role, RELEASES):
            continue
        mine = signed & {key.canonical_key_id for key in keys.values()}
        if mine:
            named.setdefault(entry.name, set()).update(mine)
    out = [
        SignerRef(r.removeprefix(f"{roles.TARGETS}/"), r, tuple(sorted(ids)))
        for r, ids in sorted(named.items(), key=lambda kv: natural_key(kv[0]))
    ]
    attributed = set().union(*named.values())
    rest = tuple(
        kid if role == roles.TARGETS else key.canonical_key_id
        for kid, key in valid.items()
        if key.canonical_key_id not in attributed
    )
    if rest:
        label = "Repo Admin" if role == roles.TARGETS else role.removeprefix(f"{roles.TARGETS}/")
        out.append(SignerRef(label, role, tuple(sorted(set(rest)))))
    return out


class TrustReader:
    """Builds views of repositories for the UI from one :class:`TrustService` (and optionally a registry)."""

    def __init__(
        self,
        service: TrustService,
        *,
        registry: RegistryClient | None = None,
        registry_url: str | None = None,
        registry_workers: int = 8,
        signatures: SignatureReader | None = None,
    ) -> None:
        self.service = service
        self.registry = registry
        self.signatures = signatures
        self.registry_url = registry_url or (registry.base_url if registry is not None else "")
        self.registry_workers = registry_workers
        self._source = ServiceSource(service)
        self._names_cache: LRUCache[bytes, dict[str, str | None]] = LRUCache(_NAMES_CACHE_SIZE)

    def close(self) -> None:
        """Nothing to release (kept for callers that close what they open)."""

    def updater(self, gun: str) -> Updater:
        """The client's updater for *gun* over the service, with a fresh in-memory cache."""
        return Updater(gun, self._source, MemoryCache(), clock=self.service.clock)

    def verify(self, gun: str) -> TrustedRepo:
        """Verified trust data; raises the client's errors (``RepositoryNotFoundError``, ``ClientError``)."""
        return self.updater(gun).refresh()

    # -- listing ---------------------------------------------------------------------------------------
    def summary(self, gun: str, updated_at: datetime) -> RepoSummaryView:
        try:
            repo = self.verify(gun)
        except RepositoryNotFoundError:
            return RepoSummaryView(gun, "invalid", 0, updated_at, "no root")
        except ClientError as e:
            state: State = "expired" if _expired(e) else "invalid"
            return RepoSummaryView(gun, state, 0, updated_at, str(e))
        return RepoSummaryView(gun, "ok", len(repo.signed_tags()), updated_at)

    # -- one repository --------------------------------------------------------------------------------
    def view(self, gun: str, *, changes: int = 20) -> RepoView | None:
        """The page's content, or None when the server has no trust data for *gun*."""
        try:
            repo: TrustedRepo | None = self.verify(gun)
            state: State = "ok"
            problem = ""
        except RepositoryNotFoundError:
            return None
        except ClientError as e:
            repo = None
            state = "expired" if _expired(e) else "invalid"
            problem = str(e)
        view = RepoView(gun, state, problem)
        view.registry = self._registry_view(gun)
        view.changes = self._changes(gun, changes)
        if repo is None:
            self._unverified_tags(view)
        else:
            self._verified(view, repo)
        view.tags.sort(key=lambda r: natural_key(r.tag))
        self._signatures(view)
        return view

    def _signatures(self, view: RepoView) -> None:
        """Each tag's Notation / cosign signatures: of the digest the registry's tag points at."""
        reader, reg = self.signatures, view.registry
        if reader is None or reg is None or reg.error is not None:
            return
        view.signature_policy = reader.describe()
        wanted = [(row, reg.descriptors[row.tag]) for row in view.tags if row.tag in reg.descriptors]
        if not wanted:
            return

        def read(item: tuple[TagRow, Descriptor]) -> TagSignatures:
            _row, desc = item
            subject = SignedDescriptor(desc.media_type, desc.digest, desc.size)
            # the GUN is the repository as clients name it (host included): what trust policy scopes name
            scope = view.gun if view.gun != reg.repository else None
            return reader.read(reg.repository, subject, scope=scope)

        with ThreadPoolExecutor(max_workers=max(1, min(self.registry_workers, len(wanted)))) as pool:
            for (row, _desc), found in zip(wanted, pool.map(read, wanted), strict=True):
                row.signatures = found

    def _changes(self, gun: str, count: int) -> list[dict[str, Any]]:
        try:
            records = self.service.changes(-1, count, gun)
        except ServerError:
            return []
        return [
            {
                "id": c.id,
                "created_at": c.created_at.isoformat(timespec="seconds"),
                "version": c.version,
                "category": c.category,
                "sha256": c.sha256,
            }
            for c in reversed(records)
        ]

    def _current_raw(self, gun: str, role: str) -> tuple[int, bytes] | None:
        try:
            meta = self.service.current(gun, role)
        except ServerError:
            return None
        try:
            version = int(json.loads(meta.data)["signed"]["version"])
        except (ValueError, KeyError, TypeError, RecursionError):
            version = 0
        return version, meta.data

    def _names(self, data: bytes) -> dict[str, str | None]:
        """Target names of a stored file, parsed once per content (keyed by its sha256: never stale)."""
        key = hashlib.sha256(data).digest()
        hit = self._names_cache.get(key)
        if hit is not None:
            return hit
        names = _target_names(data)
        self._names_cache.put(key, names)
        return names

    def _history(self, gun: str, versions: Mapping[str, int]) -> dict[str, tuple[str, int]]:
        """Tag -> (role, version) of the newest *older* stored version of a trusted role that listed it."""
        found: dict[str, tuple[str, int]] = {}
        for role in TRUSTED_ROLES:
            version = versions.get(role)
            if version is None:
                current = self._current_raw(gun, role)
                if current is None:
                    continue
                version = current[0]
            for v in range(version - 1, max(0, version - 1 - HISTORY_VERSIONS), -1):
                try:
                    meta = self.service.by_version(gun, role, v)
                except ServerError:
                    continue
                for name in self._names(meta.data):
                    found.setdefault(name, (role, v))
        return found

    def _unverified_tags(self, view: RepoView) -> None:
        """Whole repository expired or invalid: every tag named anywhere gets that status."""
        claimed: dict[str, str | None] = {}
        for role in reversed(TRUSTED_ROLES):  # releases last: it wins, as in resolve
            raw = self._current_raw(view.gun, role)
            if raw is not None:
                claimed.update(self._names(raw[1]))
        reg = view.registry.digests if view.registry else {}
        status: Status = "expired" if view.state == "expired" else "invalid"
        for name in sorted(set(claimed) | set(reg)):
            digest = claimed.get(name)
            note = (
                "trust data does not verify: this tag is not trusted"
                if name in claimed
                else "in the registry; the repository's trust data does not verify"
            )
            view.tags.append(
                TagRow(
                    name,
                    status,
                    digest=f"sha256:{digest}" if digest else None,
                    registry_digest=reg.get(name),
                    note=note + (" (digest as claimed, unverified)" if digest else ""),
                )
            )

    def _verified(self, view: RepoView, repo: TrustedRepo) -> None:
        info = inspect_data(view.gun, repo, None)
        view.ignored = dict(repo.ignored)
        for admin in info["AdministrativeKeys"]:
            ids = [k["ID"] for k in admin["Keys"]]
            if admin["Name"] == "Root":
                view.root_keys = ids
            else:
                view.repository_keys = ids
        root = repo.root.signed
        view.server_keys = {r: sorted(root.roles[r].keyids) for r in (roles.SNAPSHOT, roles.TIMESTAMP)}
        signer_keys = {s["Name"]: tuple(k["ID"] for k in s["Keys"]) for s in info["Signers"]}
        view.signers = [SignerRef(n, f"targets/{n}", ids) for n, ids in sorted(signer_keys.items())]
        view.versions = {
            roles.ROOT: (root.version, root.expires.to_datetime()),
            roles.TIMESTAMP: (repo.timestamp.signed.version, repo.timestamp.signed.expires.to_datetime()),
            roles.SNAPSHOT: (repo.snapshot.signed.version, repo.snapshot.signed.expires.to_datetime()),
            **{r: (e.signed.version, e.signed.expires.to_datetime()) for r, e in repo.targets.items()},
        }
        by_digest: dict[tuple[str, str], list[str]] = {
            (t["SignedTag"], t["Digest"]): list(t["Signers"]) for t in info["SignedTags"]
        }
        role_signers = {role: _role_signers(repo, role) for role in TRUSTED_ROLES if role in repo.targets}

        # tags the current data names anywhere, in roles that failed verification, in the registry, in history
        listed: dict[str, list[str]] = {}  # tag -> every verified role that lists it (visible to it)
        for m in repo.all_targets():
            listed.setdefault(m.name, []).append(m.role)
        failed: dict[str, str] = {}  # tag -> ignored trusted role that lists it
        for role in TRUSTED_ROLES:
            if role in repo.ignored:
                raw = self._current_raw(view.gun, role)
                for name in self._names(raw[1]) if raw else {}:
                    failed.setdefault(name, role)
        history = self._history(view.gun, {r: e.signed.version for r, e in repo.targets.items()})
        reg = view.registry.digests if view.registry and view.registry.error is None else None
        names = set(listed) | set(failed) | set(history) | set(reg or {})
        for name in names:
            view.tags.append(
                self._row(name, repo, listed.get(name, []), by_digest, role_signers, failed, history, reg)
            )

    def _row(
        self,
        name: str,
        repo: TrustedRepo,
        listed_in: list[str],
        by_digest: Mapping[tuple[str, str], list[str]],
        role_signers: Mapping[str, list[SignerRef]],
        failed: Mapping[str, str],
        history: Mapping[str, tuple[str, int]],
        reg: Mapping[str, str | None] | None,
    ) -> TagRow:
        in_registry = reg is not None and name in reg
        registry_digest = reg.get(name) if reg is not None else None
        try:
            match = repo.resolve(name)
        except NotSignedError as e:
            trusted_role = next((r for r in TRUSTED_ROLES if r in listed_in), None)
            if trusted_role is not None:  # listed in a trusted role but without a sha256
                return TagRow(
                    name, "invalid", registry_digest=registry_digest, role=trusted_role, note=str(e)
                )
            if name in failed:
                role = failed[name]
                why = repo.ignored[role]
                status: Status = (
                    "expired" if isinstance(repo.state.ignored[role], ExpiredError) else "invalid"
                )
                return TagRow(
                    name,
                    status,
                    registry_digest=registry_digest,
                    role=role,
                    note=f"{role} is not trusted: {why}",
                )
            if name in history:
                role, version = history[name]
                return TagRow(
                    name,
                    "revoked",
                    registry_digest=registry_digest,
                    note=f"was signed in {role} version {version}; no longer signed",
                )
            others = sorted(listed_in)
            note = "in the registry, not in the trust data" if in_registry else "not in the registry"
            if others:
                note = f"signed only in {', '.join(others)}, which docker does not trust for pulls"
            return TagRow(name, "unsigned", registry_digest=registry_digest, note=note)
        digest_hex = match.meta.hashes["sha256"].hex()
        # who signed: the keys with valid signatures on the role the tag resolved from, by signer name
        signers = list(role_signers.get(match.role, []))
        notes = []
        # docker trust inspect also names delegations that list the same digest: say so, but not as signers
        shown = {s.name for s in signers}
        others = sorted((n for n in by_digest.get((name, digest_hex), []) if n not in shown), key=natural_key)
        if others:
            notes.append(
                f"also listed with this digest by {', '.join(others)}, whose keys did not sign {match.role}"
            )
        row = TagRow(
            name,
            "signed",
            digest=f"sha256:{digest_hex}",
            registry_digest=registry_digest,
            role=match.role,
            signers=signers,
        )
        if reg is not None:
            if not in_registry:
                notes.insert(0, "not in the registry")
            elif registry_digest is None:
                notes.insert(0, "the registry's digest for this tag could not be read")
            elif registry_digest != row.digest:
                row.status = "stale"
                notes.insert(0, "the registry's tag points at another digest than the signed one")
        row.note = "; ".join(notes)
        return row

    # -- registry --------------------------------------------------------------------------------------
    def _registry_view(self, gun: str) -> RegistryView | None:
        if self.registry is None:
            return None
        client = self.registry
        view = RegistryView(self.registry_url, registry_repository(gun))
        try:
            tags = client.tags(view.repository)
        except RegistryRepoNotFoundError:
            return view  # no such repository in the registry: no tags
        except (RegistryError, ValueError) as e:
            view.error = str(e)
            return view

        def describe(tag: str) -> Descriptor | None:
            try:
                return client.head_manifest(view.repository, tag)
            except ManifestNotFoundError:
                return None
            except RegistryError:
                try:
                    manifest = client.get_manifest(view.repository, tag)
                    return Descriptor(manifest.media_type, manifest.digest, manifest.size)
                except (RegistryError, ValueError) as e:
                    log.warning("cannot read %s:%s from the registry: %s", view.repository, tag, e)
                    return None
            except ValueError:
                return None

        tags = [t for t in tags if signature_tag(t) is None]  # signatures, shown with what they sign
        if tags:
            with ThreadPoolExecutor(max_workers=max(1, min(self.registry_workers, len(tags)))) as pool:
                found = dict(zip(tags, pool.map(describe, tags), strict=True))
            view.digests = {t: d.digest if d is not None else None for t, d in found.items()}
            view.descriptors = {t: d for t, d in found.items() if d is not None}
        return view
