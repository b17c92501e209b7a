"""Role names: the four base roles and delegations ``targets/<name>[/<name>...]``."""

from __future__ import annotations

import posixpath
import re

__all__ = [
    "BASE_ROLES",
    "ROOT",
    "SNAPSHOT",
    "TARGETS",
    "TIMESTAMP",
    "is_delegation",
    "is_valid_role",
    "is_wildcard_delegation",
    "parent_role",
    "role_depth",
]

ROOT = "root"
TARGETS = "targets"
SNAPSHOT = "snapshot"
TIMESTAMP = "timestamp"
BASE_ROLES = (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)

_DELEGATION_CHARS = re.compile(r"[-a-z0-9_/]+\Z")


def is_delegation(role: str) -> bool:
    """``targets/...`` with lower-case ``[-a-z0-9_/]``, under 256 characters, already ``path.Clean``."""
    return (
        role.startswith(TARGETS + "/")
        and len(role) < 256
        and _DELEGATION_CHARS.match(role) is not None
        and posixpath.normpath(role) == role
    )


def is_wildcard_delegation(role: str) -> bool:
    """``targets/*`` or ``targets/a/*``: changelist scopes meaning "every delegation below"."""
    return role.endswith("/*") and (role[:-2] == TARGETS or is_delegation(role[:-2]))


def is_valid_role(role: str) -> bool:
    """A base role or a valid delegation name."""
    return role in BASE_ROLES or is_delegation(role)


def parent_role(role: str) -> str:
    """The role that delegates to *role* (``targets/a/b`` -> ``targets/a``)."""
    return posixpath.dirname(role)


def role_depth(role: str) -> int:
    """Number of path segments: ``targets`` is 1, ``targets/a`` is 2."""
    return role.count("/") + 1
