"""A repository's whole trust data as it moves between servers: every root version and the current files.

:class:`RepositoryHistory` is what ``notar import`` downloads from a Notary v1 server and what the notar
server's import endpoint stores: root versions 1..N (each rotation step is kept, so that a client whose
cache holds an old version can walk to the newest), and the current timestamp, snapshot, ``targets`` and
delegation files. :func:`verify_history` checks it the way a client that knew nothing would, but from
root version 1 instead of trusting the newest root on first use:

1. root 1 must be self-consistent (its own certificates sign it); each next version must be signed by
   its predecessor's root keys and its own; the newest must not have expired. With *pinning*, the newest
   root must also satisfy it; with *anchor* (a root the caller trusted before, e.g. its cache), that very
   root must be one of the versions, byte for byte.
2. the timestamp, the snapshot it names and every targets file the snapshot lists, depth first from
   ``targets``, each role once: signatures, hashes and lengths, expiry, and what an upload must pass
   (:func:`~notar.tuf.check_targets_content`). A delegation that fails as clients ignore it
   (expired, under-signed) is kept, with the reason, as a client would see it; its children are not part
   of the history (no client would fetch them).
3. nothing else: a targets file that the walk does not reach is refused, so nothing is stored unchecked.

Every failure is a :class:`HistoryError` naming the step (``root version 3``, ``timestamp``,
``targets/releases``...) and the underlying :class:`~notar.tuf.TufError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from notar.encoding import GoTime
from notar.tuf import roles
from notar.tuf._model import Envelope, Root, Targets
from notar.tuf._trusted import TrustedSet
from notar.tuf._verify import TrustPinning, check_targets_content, verify_root
from notar.tuf.errors import RootError, TufError

__all__ = ["MAX_ROOT_VERSIONS", "HistoryError", "RepositoryHistory", "VerifiedHistory", "verify_history"]

#: At most this many root versions are walked (a server claiming root version 2**31 is not followed).
MAX_ROOT_VERSIONS = 1000


class HistoryError(TufError):
    """The history does not verify: ``step`` says where (``root version N``, ``timestamp``, a role name)."""

    def __init__(self, step: str, error: TufError | str) -> None:
        self.step = step
        self.error = error
        super().__init__(f"{step}: {error}")

    @property
    def role(self) -> str:
        """The role the failing step is about (``root`` for every root version)."""
        return roles.ROOT if self.step.startswith("root") else self.step


@dataclass(frozen=True)
class RepositoryHistory:
    """The bytes of one repository's trust data (see the module doc). ``roots[k]`` is version ``k + 1``."""

    gun: str
    roots: tuple[bytes, ...]
    timestamp: bytes
    snapshot: bytes
    targets: Mapping[str, bytes] = field(default_factory=dict)  # targets and delegations, by role


@dataclass
class VerifiedHistory:
    """A :class:`RepositoryHistory` that verified: the trusted state at its newest root, and what clients
    would ignore (delegation -> the reason)."""

    history: RepositoryHistory
    state: TrustedSet
    ignored: dict[str, TufError]
    versions: dict[str, int]  # role -> version of its current file (every root version is its index + 1)

    @property
    def root(self) -> Envelope[Root]:
        assert self.state.root is not None
        return self.state.root.envelope

    def files(self) -> list[tuple[str, int, bytes]]:
        """(role, version, bytes) of every file, roots first (for storing them as they are)."""
        h = self.history
        out = [(roles.ROOT, k + 1, data) for k, data in enumerate(h.roots)]
        out.append((roles.TIMESTAMP, self.versions[roles.TIMESTAMP], h.timestamp))
        out.append((roles.SNAPSHOT, self.versions[roles.SNAPSHOT], h.snapshot))
        for role in sorted(h.targets, key=lambda r: (roles.role_depth(r), r)):
            out.append((role, self.versions[role], h.targets[role]))
        return out

    @property
    def delegations(self) -> list[str]:
        """Every delegation file in the history (verified or ignored), in walk order."""
        return [r for r in self.history.targets if r != roles.TARGETS]


def verify_history(
    history: RepositoryHistory,
    *,
    now: GoTime,
    pinning: TrustPinning | None = None,
    anchor: bytes | None = None,
) -> VerifiedHistory:
    """Check *history* from root version 1 (see the module doc); :class:`HistoryError` on the first failure."""
    gun = history.gun
    if not history.roots:
        raise HistoryError("root version 1", "missing")
    if len(history.roots) > MAX_ROOT_VERSIONS:
        raise HistoryError("root", f"more than {MAX_ROOT_VERSIONS} root versions")
    state = TrustedSet(gun, now)
    newest = len(history.roots)
    for index, data in enumerate(history.roots):
        version = index + 1
        step = f"root version {version}"
        try:
            if index == 0:
                first = state.load_anchor_root(data)  # self-consistent; expiry only matters for the newest
                if first.signed.version != 1:
                    raise RootError(f"the first root has version {first.signed.version}, not 1")
                if newest == 1:
                    state.require_unexpired_root()
            else:
                state.update_root(data, version=version, final=version == newest)
        except TufError as e:
            raise HistoryError(step, e) from e
    root = state.root
    assert root is not None
    if pinning is not None:
        try:
            verify_root(root.envelope, gun, now=now, pinning=pinning)
        except TufError as e:
            raise HistoryError(f"root version {newest}", e) from e
    if anchor is not None:
        _check_anchor(history, anchor)

    versions = {roles.ROOT: newest}
    try:
        versions[roles.TIMESTAMP] = state.update_timestamp(history.timestamp).signed.version
    except TufError as e:
        raise HistoryError(roles.TIMESTAMP, e) from e
    try:
        versions[roles.SNAPSHOT] = state.update_snapshot(history.snapshot).signed.version
    except TufError as e:
        raise HistoryError(roles.SNAPSHOT, e) from e

    ignored: dict[str, TufError] = {}
    reached: set[str] = set()
    queue = [roles.TARGETS]
    while queue:
        role = queue.pop(0)
        if role in reached:
            continue  # each role is walked once (a delegation listed twice must not double the walk)
        if state.listed(role) is None:
            if role == roles.TARGETS:
                raise HistoryError(role, "not listed in the snapshot")
            continue  # delegated but never published: nothing to carry
        file = history.targets.get(role)
        if file is None:
            raise HistoryError(role, "listed in the snapshot but missing")
        reached.add(role)
        try:
            verified = state.update_targets(role, file, ignorable=True)
        except TufError as e:
            raise HistoryError(role, e) from e
        if verified is None:
            ignored[role] = state.ignored[role]
            try:  # carried as it is: its version is still needed to store it
                versions[role] = Envelope.from_bytes(file, expect=Targets, role=role).signed.version
            except TufError as e:
                raise HistoryError(role, e) from e
            continue
        versions[role] = verified.signed.version
        try:
            check_targets_content(verified.signed, verified.keys)  # what an upload must pass, too
        except TufError as e:
            raise HistoryError(role, e) from e
        queue[0:0] = state.children(role)
    extra = sorted(set(history.targets) - reached)
    if extra:
        raise HistoryError(extra[0], "not reachable from targets through verified delegations")
    return VerifiedHistory(history, state, ignored, versions)


def _check_anchor(history: RepositoryHistory, anchor: bytes) -> None:
    """The root the caller trusted before must be in the history, unchanged."""
    try:
        version = Envelope.from_bytes(anchor, expect=Root).signed.version
    except TufError as e:
        raise HistoryError("trusted root", e) from e
    if version > len(history.roots):
        raise HistoryError(
            f"root version {len(history.roots)}",
            f"older than the root this client trusted before (version {version}): a rollback, or another "
            "server's history",
        )
    if version < 1 or history.roots[version - 1] != anchor:
        raise HistoryError(
            f"root version {version}",
            "differs from the root this client trusted before (the server's history was rewritten)",
        )
