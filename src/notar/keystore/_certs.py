"""Certificate chains kept beside private keys: ``<trust_dir>/private/<canonical key ID>.crt``.

Notation signatures carry the signer's certificate chain (``x5c``), so a key that signs them needs one.
The chain lives next to the key file, under the same name with ``.crt`` instead of ``.key``:

* notary 0.7 and the docker CLI list only ``*.key`` files in ``private/`` (notary's file store matches
  the extension), so they never see it, and ``private/`` keeps its mode 0700;
* it moves, is backed up and is removed together with the key;
* the file is a plain PEM bundle (``CERTIFICATE`` blocks, leaf first, then each issuer up to the root),
  mode 0644: a certificate is public, and ``openssl x509``/``notation`` read it as is.

This module only encodes and decodes; :class:`notar.keystore.FileKeyStore` stores, and checks that the
leaf certifies the key (the certificate *rules* are the signature format's business, see
:mod:`notar.notation.certs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from notar.crypto import CryptoError, PublicKey, pem_blocks
from notar.keystore.errors import CertificateFileError

__all__ = [
    "CERT_EXTENSION",
    "MAX_CHAIN_CERTIFICATES",
    "MAX_CHAIN_FILE_BYTES",
    "CertificateInfo",
    "decode_certificate_chain",
    "encode_certificate_chain",
    "same_public_key",
]

CERT_EXTENSION: Final = ".crt"
#: Longer chains are refused (Notation's own limit for ``x5c``; real chains have 1 to 4 certificates).
MAX_CHAIN_CERTIFICATES: Final = 16
MAX_CHAIN_FILE_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """The stored chain of one key, for listings: where it is, whom the leaf names, until when."""

    key_id: str
    path: Path
    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        """The certificate of the key itself (first of the chain)."""
        return self.chain[0]

    @property
    def subject(self) -> str:
        """The leaf's subject, RFC 4514 text."""
        try:
            return self.leaf.subject.rfc4514_string()
        except ValueError:
            return "<unprintable subject>"

    @property
    def not_after(self) -> datetime:
        """The end of the chain's validity: the earliest ``notAfter`` of all its certificates."""
        return min(c.not_valid_after_utc for c in self.chain)

    @property
    def not_before(self) -> datetime:
        """The start of the chain's validity: the latest ``notBefore`` of all its certificates."""
        return max(c.not_valid_before_utc for c in self.chain)


def encode_certificate_chain(chain: Sequence[x509.Certificate]) -> bytes:
    """The PEM bundle of *chain*, in order (leaf first)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


def decode_certificate_chain(data: bytes, *, what: str) -> tuple[x509.Certificate, ...]:
    """Parse a PEM bundle of ``CERTIFICATE`` blocks (1 to 16; text between blocks is ignored).

    Raises :class:`CertificateFileError` naming *what* for anything else: no block, another block type
    (a private key pasted into a chain file is refused, not skipped), broken base64 or DER, too many.
    """
    if len(data) > MAX_CHAIN_FILE_BYTES:
        raise CertificateFileError(f"{what}: more than {MAX_CHAIN_FILE_BYTES // (1 << 20)} MiB")
    try:
        blocks = pem_blocks(data)
    except CryptoError as e:
        raise CertificateFileError(f"{what}: {e}") from None
    if not blocks:
        raise CertificateFileError(f"{what}: no PEM CERTIFICATE block found")
    if len(blocks) > MAX_CHAIN_CERTIFICATES:
        raise CertificateFileError(
            f"{what}: {len(blocks)} PEM blocks; a chain has at most {MAX_CHAIN_CERTIFICATES} certificates"
        )
    chain = []
    for i, (kind, _headers, der) in enumerate(blocks):
        if kind != "CERTIFICATE":
            raise CertificateFileError(f"{what}: PEM block {i + 1} is {kind!r}, not a CERTIFICATE")
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            raise CertificateFileError(
                f"{what}: PEM block {i + 1} is not a valid certificate ({e})"
            ) from None
    return tuple(chain)


def _spki(key: object) -> bytes | None:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return None
    try:
        spki = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError):
        return None
    return spki if isinstance(spki, bytes) else None


def same_public_key(cert: x509.Certificate, key: PublicKey) -> bool:
    """Whether *cert* certifies *key* (same SubjectPublicKeyInfo)."""
    try:
        mine = _spki(key.to_crypto())
        theirs = _spki(cert.public_key())
    except (CryptoError, ValueError, UnsupportedAlgorithm):
        return False
    return mine is not None and mine == theirs
