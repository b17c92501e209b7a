"""Import of a repository moved from another Notary v1 server (``notar import``; notar's own endpoint).

A Notary v1 server takes updates only on top of what it stores, so a repository's history (root versions
1..N, whose timestamp key the old server held) cannot arrive through the update API. The import carries:

* the **history** (:class:`notar.tuf.RepositoryHistory`): every root version and the current timestamp,
  snapshot, targets and delegation files, byte for byte as the old server served them, verified here from
  root version 1 by :func:`notar.tuf.verify_history` (the client verified it too);
* the **update** that moves the repository onto this server: root version N+1 listing this server's
  timestamp key (and snapshot key, when the old server held that), signed with the repository's root key,
  and a new snapshot when the client holds the snapshot key. It is validated exactly as an ordinary update
  on top of the history (:func:`notar.server.validation.validate_update`), so it must be signed by root
  N's keys; the server then signs the snapshot (if it holds that key) and the timestamp, whose versions
  continue the old server's: a client that cached the repository from the old server sees no rollback.

Everything is stored in one transaction (:meth:`MetaStore.import_many`): nothing is half-imported. A GUN
that already has trust data is refused unless *force*, and then only by a history that is newer for every
role the GUN has (so no client that read this server sees a rollback); the store checks both inside that
transaction (:meth:`TrustService.import_repository` says so as ``REPOSITORY_EXISTS``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from notar.encoding import EncodingError, GoTime, check_value_density
from notar.server.errors import ServerError
from notar.server.keys import KeyService
from notar.server.storage import MetaUpdate, StoredMeta
from notar.server.validation import bad_update, validate_update
from notar.tuf import MAX_ROOT_VERSIONS, HistoryError, RepositoryHistory, roles, verify_history

__all__ = ["IMPORT_FIELDS", "ImportResult", "parse_import_body", "plan_import"]


@dataclass(frozen=True)
class ImportResult:
    """What an import stored: role -> its current version afterwards, and every file stored."""

    versions: dict[str, int]
    updates: list[MetaUpdate]


class _Staged:
    """The history as a read-only store: what :func:`validate_update` reads as the stored state."""

    def __init__(self, gun: str, files: Sequence[MetaUpdate]) -> None:
        when = datetime.now(UTC)
        self._current: dict[str, StoredMeta] = {}
        for f in files:
            have = self._current.get(f.role)
            if have is None or f.version > have.version:
                self._current[f.role] = StoredMeta(gun, f.role, f.version, f.data, "", when)

    def get_current(self, gun: str, role: str) -> StoredMeta | None:
        return self._current.get(role)

    def get_current_many(self, gun: str, roles: Sequence[str]) -> dict[str, StoredMeta]:
        return {r: self._current[r] for r in roles if r in self._current}


_STEP_ERRORS = {roles.ROOT: "ErrBadRoot", roles.SNAPSHOT: "ErrBadSnapshot", roles.TIMESTAMP: "ErrBadRoot"}


def plan_import(
    gun: str,
    history: RepositoryHistory,
    update: Mapping[str, bytes],
    *,
    keys: KeyService,
    now: Callable[[], GoTime],
) -> ImportResult:
    """Verify *history* and *update* (role -> bytes: ``root``, optionally ``snapshot``) and return every
    file to store; ``INVALID_UPDATE`` naming the step. Whether the GUN may be written (new, or replaced by
    a newer history) is decided by the store, in the transaction that writes it."""
    clock = now()
    try:
        verified = verify_history(history, now=clock)
    except HistoryError as e:
        raise bad_update(_STEP_ERRORS.get(e.role, "ErrBadTargets"), f"imported history: {e}") from e
    files = [MetaUpdate(role, version, data) for role, version, data in verified.files()]
    unexpected = sorted(set(update) - {roles.ROOT, roles.SNAPSHOT})
    if unexpected:
        raise bad_update(
            "ErrValidation", f"an import's update carries only root and snapshot, not {unexpected[0]}"
        )
    if roles.ROOT not in update:
        raise bad_update(
            "ErrBadRoot",
            "an import needs a new root version listing this server's timestamp key, signed by the root key",
        )
    plan = validate_update(gun, update, store=_Staged(gun, files), keys=keys, now=lambda: clock)
    carried = verified.versions
    for f in plan.updates:  # the update moves every role it carries forward, never back
        if f.version <= carried.get(f.role, 0):
            name = {roles.ROOT: "ErrBadRoot", roles.SNAPSHOT: "ErrBadSnapshot"}.get(f.role, "ErrValidation")
            raise bad_update(
                name,
                f"the import's new {f.role} has version {f.version}; it must be above the imported "
                f"version {carried[f.role]} (clients that read the old server would see a rollback)",
            )
    stored = [*files, *plan.updates]
    versions: dict[str, int] = {}
    for f in stored:
        versions[f.role] = max(versions.get(f.role, 0), f.version)
    return ImportResult(versions, stored)


#: The body's JSON fields (each file base64, standard alphabet).
IMPORT_FIELDS = ("roots", "timestamp", "snapshot", "targets", "update")


def parse_import_body(
    gun: str, body: bytes, *, max_file_bytes: int, max_timestamp_bytes: int, max_files: int
) -> tuple[RepositoryHistory, dict[str, bytes]]:
    """The import request body -> (history, update); MALFORMED_JSON / TOO_LARGE / INVALID_ROLE on bad input.

    ``{"roots": [b64, ...], "timestamp": b64, "snapshot": b64, "targets": {role: b64},
    "update": {"root": b64, "snapshot": b64}}``: roots are versions 1..N in order.
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ServerError("MALFORMED_JSON", "the import body is not JSON") from e
    if not isinstance(doc, dict) or set(doc) - set(IMPORT_FIELDS):
        raise ServerError(
            "MALFORMED_JSON", f"the import body is an object with the fields {list(IMPORT_FIELDS)}"
        )
    count = 0

    def file(value: object, what: str, cap: int) -> bytes:
        nonlocal count
        count += 1
        if count > max_files:
            raise ServerError("TOO_LARGE", f"imports are limited to {max_files} files")
        if not isinstance(value, str):
            raise ServerError("MALFORMED_JSON", f"{what} must be a base64 string")
        if len(value) > (cap + 2) // 3 * 4:
            raise ServerError("TOO_LARGE", f"{what} metadata is limited to {cap} bytes")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ServerError("MALFORMED_JSON", f"{what} is not valid base64") from e
        try:
            check_value_density(data, what=f"{what} metadata")
        except EncodingError as e:
            raise ServerError("TOO_LARGE", str(e)) from e
        return data

    def role_name(name: object) -> str:
        if not isinstance(name, str) or not roles.is_valid_role(name):
            raise ServerError("INVALID_ROLE", str(name)[:256])
        return name

    roots_value = doc.get("roots")
    if not isinstance(roots_value, list) or not roots_value:
        raise ServerError("MALFORMED_JSON", "roots must be a non-empty list (root versions 1..N)")
    if len(roots_value) > MAX_ROOT_VERSIONS:
        raise ServerError("TOO_LARGE", f"imports carry at most {MAX_ROOT_VERSIONS} root versions")
    roots_bytes = tuple(file(v, f"root version {i + 1}", max_file_bytes) for i, v in enumerate(roots_value))
    timestamp = file(doc.get("timestamp"), roles.TIMESTAMP, max_timestamp_bytes)
    snapshot = file(doc.get("snapshot"), roles.SNAPSHOT, max_file_bytes)
    targets_value = doc.get("targets")
    if not isinstance(targets_value, dict):
        raise ServerError("MALFORMED_JSON", "targets must be an object (role -> file)")
    targets: dict[str, bytes] = {}
    for name, value in targets_value.items():
        role = role_name(name)
        if role != roles.TARGETS and not roles.is_delegation(role):
            raise ServerError("INVALID_ROLE", role)
        targets[role] = file(value, role, max_file_bytes)
    update_value = doc.get("update")
    if not isinstance(update_value, dict):
        raise ServerError(
            "MALFORMED_JSON", "update must be an object (root, and snapshot if the client signs it)"
        )
    update = {
        role_name(name): file(value, f"new {name}", max_file_bytes) for name, value in update_value.items()
    }
    return RepositoryHistory(gun, roots_bytes, timestamp, snapshot, targets), update
