"""Read notation's configuration directory: the trust policy file and the trust store tree.

This module is the only one in :mod:`notar.notation` that touches the filesystem; everything it reads is
handed to the pure parsers (:func:`~notar.notation.policy.parse_trust_policy`,
:func:`~notar.notation.truststore.parse_certificate_file`).

Layout (as ``notation`` reads it)::

    <config>/trustpolicy.oci.json          (preferred) or <config>/trustpolicy.json
    <config>/truststore/x509/<type>/<name>/<file>    type: ca | signingAuthority | tsa

``<config>`` defaults to ``$XDG_CONFIG_HOME/notation``, else ``~/.config/notation``. In a named store
every regular file is read (PEM or DER, several certificates per file); sub-directories are ignored; a
symlink (file or store directory) is an error, and so is a file that is not a certificate, naming it.
Such errors are recorded per store and raised when verification uses that store.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from notar.notation.errors import TrustPolicyError, TrustStoreError
from notar.notation.policy import StoreRef, StoreType, TrustPolicyDocument, parse_trust_policy
from notar.notation.truststore import TrustStore, parse_certificate_file, trust_anchor_warnings

__all__ = [
    "POLICY_FILE",
    "POLICY_FILE_OCI",
    "default_config_dir",
    "load_trust_policy",
    "load_trust_store",
    "load_trust_store_dir",
    "read_named_store",
    "trust_policy_path",
]

POLICY_FILE_OCI = "trustpolicy.oci.json"
POLICY_FILE = "trustpolicy.json"
#: Trust policy files larger than this are refused (real ones are a few KiB).
MAX_POLICY_SIZE = 1024 * 1024
#: Trust store files larger than this are refused (a certificate bundle of ~1000 certificates).
MAX_CERT_FILE_SIZE = 4 * 1024 * 1024


def default_config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/notation`` if set and non-empty, else ``~/.config/notation``."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "notation"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".config" / "notation"


def trust_policy_path(config_dir: Path) -> Path:
    """The policy file notation would use: ``trustpolicy.oci.json`` if it exists, else ``trustpolicy.json``."""
    oci = config_dir / POLICY_FILE_OCI
    return oci if oci.exists() else config_dir / POLICY_FILE


def _read_regular(path: Path, *, limit: int, error: type[Exception]) -> bytes:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from e
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{path}: is a symlink (symlinks are not supported)")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: is not a regular file")
    if st.st_size > limit:
        raise error(f"{path}: {st.st_size} bytes; the limit is {limit}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror})") from e


def load_trust_policy(config_dir: Path | None = None) -> TrustPolicyDocument:
    """Read and validate the trust policy of *config_dir* (default: :func:`default_config_dir`)."""
    path = trust_policy_path(config_dir if config_dir is not None else default_config_dir())
    data = _read_regular(path, limit=MAX_POLICY_SIZE, error=TrustPolicyError)
    return parse_trust_policy(data, source=str(path))


def read_named_store(directory: Path) -> tuple[list[x509.Certificate], list[str]]:
    """The certificates of one named store directory and warnings; raise :class:`TrustStoreError`.

    Regular files are read in name order; sub-directories are skipped; a symlink (the directory itself
    or an entry) or an unreadable or non-certificate file is an error naming the path.
    """
    try:
        st = directory.lstat()
    except FileNotFoundError:
        raise TrustStoreError(f"{directory}: no such directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise TrustStoreError(f"{directory}: is a symlink (symlinks are not supported)")
    if not stat.S_ISDIR(st.st_mode):
        raise TrustStoreError(f"{directory}: is not a directory")
    certs: list[x509.Certificate] = []
    warnings: list[str] = []
    for entry in sorted(directory.iterdir()):
        mode = entry.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        data = _read_regular(entry, limit=MAX_CERT_FILE_SIZE, error=TrustStoreError)
        found = parse_certificate_file(data, name=str(entry))
        warnings.extend(trust_anchor_warnings(found, name=str(entry)))
        certs.extend(found)
    if not certs:
        raise TrustStoreError(f"{directory}: no certificates")
    return certs, warnings


def load_trust_store(config_dir: Path | None = None) -> TrustStore:
    """Read every named store under ``<config>/truststore/x509``; broken stores are recorded, not raised.

    A missing ``truststore`` tree gives an empty store (every lookup then fails with "does not exist").
    A type directory that is a symlink raises :class:`TrustStoreError`.
    """
    config = config_dir if config_dir is not None else default_config_dir()
    return _read_x509_tree(config / "truststore" / "x509")


def load_trust_store_dir(directory: str | Path) -> TrustStore:
    """A trust store directory given on its own (``--trust-store DIR``): it must hold ``x509/``."""
    directory = Path(directory)
    root = directory / "x509"
    if not root.is_dir():
        raise TrustStoreError(
            f"{directory}: no x509/ directory (expected x509/{{ca,signingAuthority,tsa}}/<name>/)"
        )
    return _read_x509_tree(root)


def _read_x509_tree(root: Path) -> TrustStore:
    """``root/<type>/<name>/`` for each store type: one named store per directory, by notation's rules."""
    stores: dict[StoreRef, tuple[x509.Certificate, ...]] = {}
    errors: dict[StoreRef, str] = {}
    warnings: list[str] = []
    for store_type in StoreType:
        type_dir = root / store_type.value
        try:
            st = type_dir.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise TrustStoreError(f"{type_dir}: is a symlink (symlinks are not supported)")
        if not stat.S_ISDIR(st.st_mode):
            continue
        for named in sorted(type_dir.iterdir()):
            try:
                ref = StoreRef.parse(f"{store_type.value}:{named.name}")
            except TrustPolicyError:
                continue  # a name no policy can refer to
            if not (named.is_symlink() or named.is_dir()):
                continue
            try:
                certs, found_warnings = read_named_store(named)
            except TrustStoreError as e:
                errors[ref] = str(e)
                continue
            stores[ref] = tuple(certs)
            warnings.extend(found_warnings)
    return TrustStore(stores, errors, tuple(warnings))
