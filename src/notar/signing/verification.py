"""What Notation and cosign signatures are verified with: a trust policy + trust store, cosign public keys.

Loaded once when the gateway (or ``notar server``'s UI) starts, with one-line :class:`ConfigError` s:

* **Notation** -- the files ``notar verify`` and ``notation verify`` read, by the same readers
  (:mod:`notar.notation.loader`): the trust policy (``trustpolicy.oci.json``, else ``trustpolicy.json``)
  and the trust store (``truststore/x509/{ca,signingAuthority,tsa}/<name>/``) of a configuration
  directory, ``$XDG_CONFIG_HOME/notation`` (default ``~/.config/notation``) unless one is given;
  ``trust_policy`` / ``trust_store`` replace either part (the store directory holds ``x509/``). Every
  trust store a statement names must be present and readable (checked here, not at the first pull).
* **cosign** -- ``cosign.pub`` PEM public keys (ECDSA, RSA or Ed25519), each named by its file for
  messages and identified by the SHA-256 of its SubjectPublicKeyInfo.

Pure configuration: nothing here talks to a registry. The gateway, the web UI and ``notar verify`` sit
above it; it lives in :mod:`notar.signing` because it is the verification side of the same seams
(ADR 0008, seam 3), below every reader.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from notar.config import ConfigError
from notar.cosign import CosignError, load_public_key
from notar.notation import (
    Level,
    TrustPolicyDocument,
    TrustPolicyError,
    TrustStore,
    TrustStoreError,
    parse_trust_policy,
)
from notar.notation.loader import (
    MAX_POLICY_SIZE,
    default_config_dir,
    load_trust_policy,
    load_trust_store,
    load_trust_store_dir,
    trust_policy_path,
)

__all__ = ["CosignKey", "NotationTrust", "load_cosign_keys", "load_notation_trust", "read_notation_files"]

MAX_KEY_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class NotationTrust:
    """A validated trust policy with its trust store, and where they were read from (for messages)."""

    policy: TrustPolicyDocument
    store: TrustStore
    source: str

    def describe(self) -> str:
        return f"trust policy {self.source} ({len(self.policy.statements)} statement(s))"


@dataclass(frozen=True)
class CosignKey:
    """A cosign verification key: ``name`` (its file) and ``fingerprint`` (sha256 of the public key DER)."""

    name: str
    fingerprint: str
    key: Any = field(compare=False, repr=False)


def _read_regular(path: Path, *, limit: int, what: str) -> bytes:
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path}: not a regular file")
    if st.st_size > limit:
        raise ConfigError(f"{what} {path}: {st.st_size} bytes; the limit is {limit}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {path}: {e.strerror or e}") from None


def _store_directory(directory: Path) -> TrustStore:
    """A trust store read from *directory* (holding ``x509/<type>/<name>/``), by the loader's rules."""
    try:
        return load_trust_store_dir(directory)
    except TrustStoreError as e:
        raise ConfigError(f"trust store {e}") from None


def read_notation_files(
    config: Path,
    *,
    trust_policy: str | Path | None,
    trust_store: str | Path | None,
    missing_policy_hint: str,
) -> tuple[TrustPolicyDocument, TrustStore, str]:
    """The trust policy (and where it came from) and the trust store: the overrides, else *config*'s.

    Every problem is a one-line :class:`ConfigError`; *missing_policy_hint* is added when the policy is
    missing from the configuration directory (each caller names its own way to give one).
    """
    try:
        if trust_policy is not None:
            path = Path(trust_policy).expanduser()
            policy = parse_trust_policy(
                _read_regular(path, limit=MAX_POLICY_SIZE, what="trust policy"), source=str(path)
            )
            source = str(path)
        else:
            policy = load_trust_policy(config)
            source = str(trust_policy_path(config))
    except TrustPolicyError as e:
        missing = trust_policy is None and not trust_policy_path(config).exists()
        raise ConfigError(f"{e}{missing_policy_hint if missing else ''}") from None
    try:
        store = (
            _store_directory(Path(trust_store).expanduser())
            if trust_store is not None
            else load_trust_store(config)
        )
    except TrustStoreError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"trust store: {e.strerror or e}") from None
    return policy, store, source


def load_notation_trust(
    *,
    config_dir: str | Path | None = None,
    trust_policy: str | Path | None = None,
    trust_store: str | Path | None = None,
    required: bool = True,
) -> NotationTrust | None:
    """The trust policy and store from notation's configuration directory, parts replaced by the overrides.

    Without any of the three arguments the default directory is used; then, when *required* is false and
    it holds no trust policy, the answer is ``None`` (Notation is simply not configured). Every other
    problem is a :class:`ConfigError`, one line.
    """
    config = Path(config_dir).expanduser() if config_dir is not None else default_config_dir()
    if config_dir is not None and not config.is_dir():
        raise ConfigError(f"notation configuration directory {config}: not a directory")
    given = any(v is not None for v in (config_dir, trust_policy, trust_store))
    if not given and not required and not trust_policy_path(config).exists():
        return None
    hint = " (write notation's trust policy there, or give a trust policy file)"
    policy, store, source = read_notation_files(
        config, trust_policy=trust_policy, trust_store=trust_store, missing_policy_hint=hint
    )
    for statement in policy.statements:
        if statement.level is Level.SKIP:
            continue
        for ref in statement.trust_stores:
            try:
                store.certificates(ref)
            except TrustStoreError as e:
                raise ConfigError(
                    f"{e} (named by trust policy statement {statement.name!r} in {source})"
                ) from None
    return NotationTrust(policy, store, source)


def _fingerprint(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_cosign_keys(paths: Sequence[str | Path]) -> tuple[CosignKey, ...]:
    """cosign public keys (``cosign.pub`` PEM) from files; duplicates (the same key) kept once."""
    keys: dict[str, CosignKey] = {}
    for item in paths:
        path = Path(item).expanduser()
        data = _read_regular(path, limit=MAX_KEY_FILE_BYTES, what="cosign public key")
        try:
            key = load_public_key(data)
        except CosignError as e:
            raise ConfigError(f"cosign public key {path}: {e}") from None
        fingerprint = _fingerprint(key)
        keys.setdefault(fingerprint, CosignKey(str(path), fingerprint, key))
    return tuple(keys.values())
