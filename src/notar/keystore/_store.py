"""Private keys in a notary / docker trust directory: ``<trust_dir>/private/<canonical key ID>.key``.

A key may have a certificate chain (for Notation signatures) beside it, ``<canonical key ID>.crt``
(see :mod:`notar.keystore._certs`): notary and docker read only ``*.key`` files and never see it. A key
held by a key service (AWS KMS) has no key file but a reference, ``<canonical key ID>.kms`` (see
:mod:`notar.keystore._refs`), and may have a chain beside it all the same.

The directory is shared with the Go tools: notary 0.7 and the docker CLI read what this store writes and
vice versa. Files are written atomically with mode 0600 in a 0700 directory. Notary's pre-0.4 layouts
(``private/root_keys/<id>[_root].key`` and ``private/tuf_keys/<gun>/<id>[_<role>].key``) are read too,
but never written or migrated.

Size: the trust directory's one on-disk format (current and legacy layouts, atomic 0600 writes, the
files beside a key) in one place, since the Go tools read the same directory.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import logging
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509

from notar.crypto import PrivateKey, PublicKey
from notar.keystore._certs import (
    CERT_EXTENSION,
    MAX_CHAIN_FILE_BYTES,
    CertificateInfo,
    decode_certificate_chain,
    encode_certificate_chain,
    same_public_key,
)
from notar.keystore._keyfile import (
    MAX_KEY_FILE_BYTES,
    DecodedKey,
    PassphraseInput,
    decode_private_key,
    encode_private_key,
    encode_public_key,
    read_key_headers,
    valid_header_value,
)
from notar.keystore._passphrase import PassphraseRetriever
from notar.keystore._refs import (
    MAX_REFERENCE_BYTES,
    REFERENCE_EXTENSION,
    KeyReference,
    decode_reference,
    encode_reference,
)
from notar.keystore.errors import (
    CertificateExistsError,
    CertificateFileError,
    CertificateMismatchError,
    InsecureKeyFileError,
    KeyExistsError,
    KeyFileError,
    KeyNotFoundError,
    KeyStorageError,
    KeystoreError,
    PassphraseUnavailableError,
    WrongPassphraseError,
)
from notar.tuf.roles import ROOT, SNAPSHOT, TARGETS, TIMESTAMP

__all__ = ["FileKeyStore", "KeyInfo", "read_regular_file"]

log = logging.getLogger(__name__)

PRIVATE_DIR: Final = "private"
KEY_EXTENSION: Final = ".key"
LEGACY_ROOT_DIR: Final = "root_keys"
LEGACY_TUF_DIR: Final = "tuf_keys"
IMPORT_ALIAS: Final = "encrypted"  # the alias docker asks for when a file to import is encrypted
_GUN_ROLES: Final = frozenset({TARGETS, SNAPSHOT, TIMESTAMP})
_KEY_ID: Final = re.compile(r"[0-9a-f]{64}\Z")
_MAX_ATTEMPTS: Final = 10  # like notary: stop even if a retriever never gives up
_warned_insecure: set[str] = set()  # stored key files already reported as group/other-accessible
_warned_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the headers of a key file say, read without a passphrase."""

    key_id: str
    role: str  # "" when a legacy file names no role
    gun: str | None
    path: Path


def _short(key_id: str) -> str:
    return key_id[:7]


def _label(alias: str, key_id: str) -> str:
    """``the targets key a93ed31`` for messages."""
    return f"the {alias or 'unnamed'} key" + (f" {_short(key_id)}" if key_id else "")


def _gun_for(role: str, gun: str | None) -> str | None:
    """Notary's rule: only targets, snapshot and timestamp keys carry a GUN."""
    if role not in _GUN_ROLES:
        return None
    if not gun:
        raise KeystoreError(f"a {role} key belongs to one repository: give its GUN")
    if not valid_header_value(gun):
        raise KeystoreError(f"invalid GUN {gun!r}")
    return gun


def _read_limited(fd: int, what: Path, limit: int = MAX_KEY_FILE_BYTES) -> bytes:
    chunks = []
    total = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            size = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
            raise KeyFileError(f"{what}: key file is too large (more than {size})")
    return b"".join(chunks)


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open *path* for reading without blocking (a FIFO would hang a plain open) and make sure it
    is a regular file; returns the descriptor (the caller closes it) and its ``fstat``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot open: {_os_reason(e)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular_file(path: Path | str, *, limit: int = MAX_KEY_FILE_BYTES, private: bool = False) -> bytes:
    """The bytes of *path*, which must be a regular file (FIFOs and devices are refused without
    blocking) of at most *limit* bytes. *private*: refuse a file that group or others may read or
    write (:class:`InsecureKeyFileError`). Every failure is a one-line :class:`KeyFileError`."""
    path = Path(path)
    fd, st = _open_regular(path)
    try:
        if private and st.st_mode & 0o077:
            raise InsecureKeyFileError(
                f"refusing to load {path}: private key files must not be readable or writable by "
                f"group or others (mode {stat.S_IMODE(st.st_mode):04o}; run chmod 600 on it)"
            )
        try:
            return _read_limited(fd, path, limit)
        except OSError as e:
            raise KeyFileError(f"{path}: cannot read: {_os_reason(e)}") from None
    finally:
        os.close(fd)


def _warn_if_insecure(path: Path, st: os.stat_result) -> None:
    """Once per file and process: a stored private key that group or others can read or write."""
    if not st.st_mode & 0o077:
        return
    with _warned_lock:
        if str(path) in _warned_insecure:
            return
        _warned_insecure.add(str(path))
    log.warning(
        "private key file %s is accessible to group or others (mode %04o): run chmod 600 on it",
        path,
        stat.S_IMODE(st.st_mode),
    )


class FileKeyStore:
    """The private keys of a trust directory (``~/.docker/trust`` or ``~/.notary``).

    *passphrases* is asked for a passphrase with the key's role as alias: when a key is added
    (``create_new=True``) and when an encrypted key is first used (attempts 0, 1, 2, ... until it gives
    up). Decrypted keys are cached for the life of the store.
    """

    def __init__(self, trust_dir: Path | str, passphrases: PassphraseRetriever) -> None:
        self.trust_dir = Path(trust_dir)
        self.private_dir = self.trust_dir / PRIVATE_DIR
        self._passphrases = passphrases
        self._cache: dict[str, tuple[PrivateKey, str]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.trust_dir)!r})"

    # ------------------------------------------------------------------------------------- writing
    def add(self, key: PrivateKey, *, role: str, gun: str | None = None) -> Path:
        """Encrypt *key* with a new passphrase for *role* and store it; returns the file's path.

        The GUN is kept only for targets, snapshot and timestamp keys (which require one); root and
        delegation keys never carry it. Re-adding a key with the same role and GUN rewrites its file;
        a file for the same key with another role or GUN raises :class:`KeyExistsError`.
        """
        if not valid_header_value(role):
            raise KeystoreError(f"invalid role name {role!r}")
        gun = _gun_for(role, gun)
        key_id = key.key_id
        path = self.private_dir / f"{key_id}{KEY_EXTENSION}"
        with self._lock:
            self._check_replace(path, key_id, role, gun)
            passphrase = self._passphrases(key_id, role, create_new=True, attempt=0)
            data = encode_private_key(key, passphrase, role=role, gun=gun)
            self._write(path, data)
            self._cache[key_id] = (key, role)
        log.debug("stored %s key %s in %s", role, _short(key_id), path)
        return path

    def _check_replace(self, path: Path, key_id: str, role: str, gun: str | None) -> None:
        if not os.path.lexists(path):
            return
        try:
            info = self._info(path, key_id, self._read(path))
        except KeystoreError as e:
            raise KeyExistsError(f"{path} exists and cannot be read ({e}); remove it first") from e
        if (info.role, info.gun) != (role, gun):
            where = f" for {info.gun}" if info.gun else ""
            raise KeyExistsError(
                f"key {_short(key_id)} is already stored as a {info.role or 'role-less'} key{where}; "
                "remove it first to store it with another role"
            )

    def _ensure_private_dir(self) -> None:
        for directory, parents in ((self.trust_dir, True), (self.private_dir, False)):
            if directory.is_dir():
                continue
            try:
                directory.mkdir(parents=parents, mode=0o700)
                directory.chmod(0o700)  # mkdir's mode is filtered by the umask
            except FileExistsError:
                raise KeyStorageError(f"{directory}: not a directory") from None
            except OSError as e:
                raise KeyStorageError(f"{e.filename or directory}: {_os_reason(e)}") from None

    def _write(self, path: Path, data: bytes, *, mode: int = 0o600) -> None:
        """Atomic replace: temp file (*mode*, same directory), fsync, rename, fsync the directory."""
        self._ensure_private_dir()
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        except OSError as e:
            raise KeyStorageError(f"cannot write {path}: {_os_reason(e)}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except BaseException as e:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            if isinstance(e, OSError):
                raise KeyStorageError(f"cannot write {path}: {_os_reason(e)}") from None
            raise
        with contextlib.suppress(OSError):  # durability of the rename; not fatal where unsupported
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def remove(self, key_id: str) -> None:
        """Delete every file of the key (including legacy copies); :class:`KeyNotFoundError` if none."""
        _check_key_id(key_id)
        with self._lock:
            paths = list(self._paths(key_id))
            if not paths:
                raise KeyNotFoundError(f"no private key with ID {_short(key_id)} in {self.private_dir}")
            for path in paths:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise KeyStorageError(f"cannot remove {path}: {_os_reason(e)}") from None
                log.debug("removed key file %s", path)
            self._cache.pop(key_id, None)
            self.remove_certificate_chain(key_id)

    # ------------------------------------------------------------------------------------- reading
    def get(self, key_id: str) -> tuple[PrivateKey, str]:
        """The decrypted key and its role, asking for the passphrase (alias = the file's role)."""
        _check_key_id(key_id)
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is not None:
                return cached
            path = next(self._paths(key_id), None)
            if path is None:
                raise KeyNotFoundError(f"no private key with ID {_short(key_id)} in {self.private_dir}")
            data = self._read(path)
            info = self._info(path, key_id, data)
            decoded = self._unlock(data, key_id=key_id, alias=info.role, where=path)
            if decoded.key.key_id != key_id:
                raise KeyFileError(
                    f"{path}: the key inside has ID {_short(decoded.key.key_id)}, not {_short(key_id)}"
                )
            self._cache[key_id] = (decoded.key, info.role)
            return decoded.key, info.role

    def _unlock(self, data: bytes, *, key_id: str, alias: str, where: Path | str) -> DecodedKey:
        """Decode *data*, asking the retriever with attempts 0, 1, ... while the passphrase is wrong."""
        for attempt in itertools.count():

            def ask(attempt: int = attempt) -> str:
                return self._passphrases(key_id, alias, create_new=False, attempt=attempt)

            try:
                return decode_private_key(data, ask)
            except WrongPassphraseError:
                if attempt + 1 >= _MAX_ATTEMPTS:
                    raise WrongPassphraseError(
                        f"wrong passphrase for {_label(alias, key_id)} after {attempt + 1} attempts"
                    ) from None
            except PassphraseUnavailableError as e:
                if attempt == 0:
                    raise
                label, reason = _label(alias, key_id), str(e)
                if label in reason:  # "the passphrase in X does not unlock the alice key 0f87883"
                    raise WrongPassphraseError(f"wrong passphrase: {reason}") from None
                raise WrongPassphraseError(f"wrong passphrase for {label} ({reason})") from None
            except KeyFileError as e:
                raise KeyFileError(f"{where}: {e}") from e
        raise AssertionError("unreachable")  # pragma: no cover

    def export_public(self, key_id: str) -> bytes:
        """The key's ``PUBLIC KEY`` PEM with a ``role:`` header (needs the passphrase once)."""
        key, role = self.get(key_id)
        return encode_public_key(key.public_key, role=role or "unknown")

    def list(self) -> list[KeyInfo]:
        """Every key in the store, from the files' headers only (no passphrase needed).

        Files that cannot be read are skipped with a warning, as notary does.
        """
        found: dict[str, KeyInfo] = {}
        for key_id, path in self._scan():
            if key_id in found:
                continue  # the flat layout wins over legacy copies
            try:
                found[key_id] = self._info(path, key_id, self._read(path))
            except KeystoreError as e:
                # the message starts with the path already
                reason = str(e)
                shown = reason if reason.startswith(str(path)) else f"{path}: {reason}"
                log.warning("skipping unreadable key file %s", shown)
        return sorted(found.values(), key=lambda i: (i.role, i.gun or "", i.key_id))

    def info(self, key_id: str) -> KeyInfo:
        """The :class:`KeyInfo` of one key (no passphrase needed)."""
        _check_key_id(key_id)
        path = next(self._paths(key_id), None)
        if path is None:
            raise KeyNotFoundError(f"no private key with ID {_short(key_id)} in {self.private_dir}")
        return self._info(path, key_id, self._read(path))

    def __contains__(self, key_id: object) -> bool:
        return isinstance(key_id, str) and _KEY_ID.match(key_id) is not None and any(self._paths(key_id))

    def find(self, role: str) -> builtins.list[KeyInfo]:
        """The keys stored with *role* (a signer name), sorted by GUN and key ID (no passphrase needed)."""
        return [i for i in self.list() if i.role == role]

    # ------------------------------------------------------------------------------- certificates
    def certificate_path(self, key_id: str) -> Path:
        """Where the certificate chain of *key_id* is kept: ``private/<key ID>.crt``."""
        _check_key_id(key_id)
        return self.private_dir / f"{key_id}{CERT_EXTENSION}"

    def add_certificate_chain(
        self, key_id: str, chain: Sequence[x509.Certificate], *, replace: bool = False
    ) -> Path:
        """Keep *chain* (leaf first) with the key *key_id*; returns the file's path.

        The key must be in the store and the leaf must certify it (same public key: this unlocks the
        key, asking for its passphrase unless it is already unlocked): :class:`KeyNotFoundError`,
        :class:`CertificateMismatchError`. An existing chain is replaced only with *replace*
        (:class:`CertificateExistsError`). Whether the chain meets a signature format's rules is the
        caller's question; the store checks only that it belongs to the key.
        """
        path = self.certificate_path(key_id)
        if not chain:
            raise CertificateFileError("the certificate chain is empty")
        with self._lock:
            public, role = self._public_for_chain(key_id)
            if not same_public_key(chain[0], public):
                raise CertificateMismatchError(
                    f"the first certificate ({_subject(chain[0])}) does not certify {_label(role, key_id)}"
                )
            if not replace and os.path.lexists(path):
                raise CertificateExistsError(
                    f"{_label(role, key_id)} already has a certificate ({path}); replace it explicitly"
                )
            self._write(path, encode_certificate_chain(chain), mode=0o644)
        log.debug("stored the certificate chain of key %s in %s", _short(key_id), path)
        return path

    def _public_for_chain(self, key_id: str) -> tuple[PublicKey, str]:
        """The public key and role a chain for *key_id* must certify: the key file's (unlocked), else the
        reference's (no passphrase); :class:`KeyNotFoundError` when the store has neither."""
        if any(self._paths(key_id)):
            key, role = self.get(key_id)
            return key.public_key, role
        ref = self.reference(key_id)
        if ref is None:
            raise KeyNotFoundError(f"no private key with ID {_short(key_id)} in {self.private_dir}")
        return ref.public_key, ref.role

    def certificate_chain(self, key_id: str) -> tuple[x509.Certificate, ...] | None:
        """The stored chain of *key_id* (leaf first), ``None`` when it has none (no passphrase needed).

        A file that is not a PEM bundle of certificates raises :class:`CertificateFileError`.
        """
        info = self.certificate_info(key_id)
        return None if info is None else info.chain

    def certificate_info(self, key_id: str) -> CertificateInfo | None:
        """:meth:`certificate_chain` with its path and dates, ``None`` when the key has no chain."""
        path = self.certificate_path(key_id)
        if not os.path.lexists(path):
            return None
        data = read_regular_file(path, limit=MAX_CHAIN_FILE_BYTES)
        return CertificateInfo(key_id, path, decode_certificate_chain(data, what=str(path)))

    def remove_certificate_chain(self, key_id: str) -> bool:
        """Delete the stored chain of *key_id*; ``False`` when there was none."""
        path = self.certificate_path(key_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise KeyStorageError(f"cannot remove {path}: {_os_reason(e)}") from None
        log.debug("removed certificate file %s", path)
        return True

    # ------------------------------------------------------------------------ key references (KMS)
    def reference_path(self, key_id: str) -> Path:
        """Where the reference of a key held by a key service is kept: ``private/<key ID>.kms``."""
        _check_key_id(key_id)
        return self.private_dir / f"{key_id}{REFERENCE_EXTENSION}"

    def add_reference(
        self, uri: str, public_key: PublicKey, *, role: str, replace: bool = False
    ) -> KeyReference:
        """Keep a reference to the key service key *uri* (public key *public_key*) for signer *role*.

        Storing the same reference again is a no-op rewrite; a reference of the same key with another URI
        or role is replaced only with *replace* (:class:`KeyExistsError`). No passphrase is needed: the
        file holds no secret.
        """
        ref = KeyReference(uri=uri, role=role, public_key=public_key.bare())
        data = encode_reference(ref)
        path = self.reference_path(ref.key_id)
        with self._lock:
            current = self._read_reference(path, ref.key_id) if os.path.lexists(path) else None
            if current is not None and (current.uri, current.role) != (uri, role) and not replace:
                raise KeyExistsError(
                    f"key {_short(ref.key_id)} is already the {current.role} key at {current.uri}; "
                    "replace it explicitly"
                )
            self._write(path, data)
        log.debug("stored the reference of %s key %s (%s) in %s", role, _short(ref.key_id), uri, path)
        return KeyReference(uri=uri, role=role, public_key=ref.public_key, path=path)

    def reference(self, key_id: str) -> KeyReference | None:
        """The reference kept for *key_id*, ``None`` when there is none (:class:`KeyFileError` if unreadable)."""
        path = self.reference_path(key_id)
        if not os.path.lexists(path):
            return None
        return self._read_reference(path, key_id)

    def references(self) -> builtins.list[KeyReference]:
        """Every reference in the store, sorted by role and key ID; unreadable files are skipped with a
        warning (as :meth:`list` does for key files)."""
        out = []
        try:
            entries = sorted(os.scandir(self.private_dir), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        for entry in entries:
            key_id = entry.name[: -len(REFERENCE_EXTENSION)]
            if not entry.name.endswith(REFERENCE_EXTENSION) or not _KEY_ID.match(key_id):
                continue
            try:
                out.append(self._read_reference(Path(entry.path), key_id))
            except KeystoreError as e:
                log.warning("skipping unreadable key reference %s", e)
        return sorted(out, key=lambda r: (r.role, r.key_id))

    def find_references(self, role: str) -> builtins.list[KeyReference]:
        """The references kept for signer *role*."""
        return [r for r in self.references() if r.role == role]

    def remove_reference(self, key_id: str) -> bool:
        """Delete the reference of *key_id* (and its certificate chain when no key file shares it);
        ``False`` when there was none."""
        path = self.reference_path(key_id)
        with self._lock:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as e:
                raise KeyStorageError(f"cannot remove {path}: {_os_reason(e)}") from None
            if not any(self._paths(key_id)):
                self.remove_certificate_chain(key_id)
        log.debug("removed key reference %s", path)
        return True

    def _read_reference(self, path: Path, key_id: str) -> KeyReference:
        data = read_regular_file(path, limit=MAX_REFERENCE_BYTES)
        ref = decode_reference(data, what=str(path), key_id=key_id)
        return KeyReference(uri=ref.uri, role=ref.role, public_key=ref.public_key, path=path)

    # ------------------------------------------------------------------------------------- import
    def import_key(
        self,
        data: bytes,
        *,
        role: str,
        gun: str | None = None,
        source_passphrase: PassphraseInput = None,
    ) -> KeyInfo:
        """Load any supported private key file and store it re-encrypted (``docker trust key load``).

        An encrypted input is decrypted with *source_passphrase*, or, when that is ``None``, with a
        passphrase from the store's retriever under the alias ``encrypted`` (as docker asks).
        The stored copy gets a new passphrase for *role*.
        """
        return self._import(data, role=role, gun=gun, source_passphrase=source_passphrase, where="input")

    def import_key_file(
        self,
        path: Path | str,
        *,
        role: str,
        gun: str | None = None,
        source_passphrase: PassphraseInput = None,
    ) -> KeyInfo:
        """:meth:`import_key` from a file, which must not be readable or writable by group or others."""
        path = Path(path)
        data = read_regular_file(path, private=True)
        return self._import(data, role=role, gun=gun, source_passphrase=source_passphrase, where=path)

    def _import(
        self,
        data: bytes,
        *,
        role: str,
        gun: str | None,
        source_passphrase: PassphraseInput,
        where: Path | str,
    ) -> KeyInfo:
        if not valid_header_value(role):
            raise KeystoreError(f"invalid role name {role!r}")
        gun = _gun_for(role, gun)
        if source_passphrase is None:
            decoded = self._unlock(data, key_id="", alias=IMPORT_ALIAS, where=where)
        else:
            try:
                decoded = decode_private_key(data, source_passphrase)
            except KeyFileError as e:
                raise KeyFileError(f"{where}: {e}") from e
        path = self.add(decoded.key, role=role, gun=gun)
        return KeyInfo(key_id=decoded.key.key_id, role=role, gun=gun, path=path)

    # ------------------------------------------------------------------------------------- files
    def _paths(self, key_id: str) -> Iterator[Path]:
        """The files that hold *key_id*: the flat one first, then legacy ones."""
        flat = self.private_dir / f"{key_id}{KEY_EXTENSION}"
        if flat.is_file():
            yield flat
        for found_id, path in self._scan_legacy():
            if found_id == key_id:
                yield path

    def _scan(self) -> Iterator[tuple[str, Path]]:
        try:
            entries = sorted(os.scandir(self.private_dir), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.endswith(KEY_EXTENSION) and entry.is_file(follow_symlinks=False):
                yield entry.name[: -len(KEY_EXTENSION)], Path(entry.path)
        yield from self._scan_legacy()

    def _scan_legacy(self) -> Iterator[tuple[str, Path]]:
        for sub in (LEGACY_ROOT_DIR, LEGACY_TUF_DIR):
            base = self.private_dir / sub
            if not base.is_dir():
                continue
            for path in sorted(base.rglob(f"*{KEY_EXTENSION}")):
                if path.is_file() and not path.is_symlink():
                    yield path.stem.split("_", 1)[0], path

    def _read(self, path: Path) -> bytes:
        try:
            fd, st = _open_regular(path)
        except KeyFileError:
            if not os.path.lexists(path):
                raise KeyNotFoundError(f"{path}: no such key file") from None
            raise
        try:
            _warn_if_insecure(path, st)
            try:
                return _read_limited(fd, path)
            except OSError as e:
                raise KeyFileError(f"{path}: cannot read: {_os_reason(e)}") from None
        finally:
            os.close(fd)

    def _info(self, path: Path, key_id: str, data: bytes) -> KeyInfo:
        try:
            headers = read_key_headers(data)
        except KeyFileError as e:
            raise KeyFileError(f"{path}: {e}") from e
        role = headers.get("role", "")
        gun = headers.get("gun") or None
        try:
            legacy = path.relative_to(self.private_dir).parts
        except ValueError:
            legacy = ()
        if len(legacy) > 1:  # root_keys/<id>[_root].key or tuf_keys/<gun...>/<id>[_<role>].key
            _, _, name_role = path.stem.partition("_")
            role = role or name_role or (ROOT if legacy[0] == LEGACY_ROOT_DIR else "")
            if legacy[0] == LEGACY_TUF_DIR and len(legacy) > 2 and gun is None:
                gun = "/".join(legacy[1:-1])
        return KeyInfo(key_id=key_id, role=role, gun=gun, path=path)


def _subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string() or "empty subject"
    except ValueError:
        return "unprintable subject"


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or _KEY_ID.match(key_id) is None:
        raise KeyNotFoundError(f"invalid key ID {str(key_id)[:80]!r}: expected 64 lower-case hex digits")
