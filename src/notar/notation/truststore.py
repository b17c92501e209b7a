"""Trust stores in memory: named sets of certificates, by type (pure; reading files is in ``loader``).

A trust store is addressed by a :class:`~notar.notation.policy.StoreRef` (``ca:acme``). Verification asks
:meth:`TrustStore.certificates` for the stores a policy statement names; a store that is missing, or was
broken on disk (a symlink, a file that is not a certificate), raises :class:`TrustStoreError` there, so
one broken store fails only the statements that use it, as in notation.

:func:`parse_certificate_file` reads one trust store file: PEM (one or more ``CERTIFICATE`` blocks) or
DER (one or more concatenated certificates). Anything else is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography import x509

from notar.crypto import CryptoError, pem_blocks
from notar.notation.certs import is_self_signed, subject_text
from notar.notation.errors import TrustStoreError
from notar.notation.policy import StoreRef

__all__ = ["TrustStore", "parse_certificate_file", "trust_anchor_warnings"]


def _split_der(data: bytes, *, name: str) -> list[bytes]:
    """Split concatenated DER SEQUENCEs (Go's ``x509.ParseCertificates`` input)."""
    out = []
    i = 0
    while i < len(data):
        if data[i] != 0x30 or i + 2 > len(data):
            raise TrustStoreError(f"{name}: not a PEM or DER certificate file")
        first = data[i + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or i + 2 + count > len(data):
                raise TrustStoreError(f"{name}: not a PEM or DER certificate file")
            length = int.from_bytes(data[i + 2 : i + 2 + count], "big")
            header = 2 + count
        end = i + header + length
        if end > len(data):
            raise TrustStoreError(f"{name}: truncated DER certificate")
        out.append(data[i:end])
        i = end
    return out


def parse_certificate_file(data: bytes, *, name: str) -> list[x509.Certificate]:
    """Every certificate in one trust store file (PEM or DER); raise :class:`TrustStoreError` naming *name*."""
    if not data:
        raise TrustStoreError(f"{name}: empty file, not a certificate")
    if b"-----BEGIN" in data:
        try:
            blocks = pem_blocks(data)
        except CryptoError as e:
            raise TrustStoreError(f"{name}: {e}") from e
        if not blocks:
            raise TrustStoreError(f"{name}: no PEM block could be read")
        ders = []
        for kind, _headers, der in blocks:
            if kind != "CERTIFICATE":
                raise TrustStoreError(f"{name}: PEM block {kind!r} is not a CERTIFICATE")
            ders.append(der)
    else:
        ders = _split_der(data, name=name)
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            raise TrustStoreError(f"{name}: invalid certificate ({e})") from e
    return certs


def trust_anchor_warnings(certs: Iterable[x509.Certificate], *, name: str) -> list[str]:
    """Certificates that are neither a CA nor self-signed (notation refuses such stores; notar loads them).

    Such a certificate still anchors trust by byte identity (pinning that exact certificate), so it is
    loaded and reported rather than rejected.
    """
    out = []
    for cert in certs:
        try:
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = basic.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca and not is_self_signed(cert):
            out.append(f"{name}: certificate {subject_text(cert)} is neither a CA nor self-signed")
    return out


@dataclass(frozen=True)
class TrustStore:
    """Named certificate sets; ``errors`` records stores that exist but could not be read."""

    stores: Mapping[StoreRef, tuple[x509.Certificate, ...]] = field(default_factory=dict)
    errors: Mapping[StoreRef, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def certificates(self, ref: StoreRef) -> tuple[x509.Certificate, ...]:
        """The certificates of store *ref*; :class:`TrustStoreError` if it is missing, broken or empty."""
        if ref in self.errors:
            raise TrustStoreError(f"trust store {ref}: {self.errors[ref]}")
        certs = self.stores.get(ref)
        if certs is None:
            raise TrustStoreError(f"trust store {ref} does not exist")
        if not certs:
            raise TrustStoreError(f"trust store {ref} has no certificates")
        return certs

    @classmethod
    def of(cls, stores: Mapping[StoreRef | str, Iterable[x509.Certificate]]) -> TrustStore:
        """Build a store from ``{"ca:name": [certs...]}`` (tests, and callers with certificates in hand)."""
        refs = {(StoreRef.parse(k) if isinstance(k, str) else k): tuple(v) for k, v in stores.items()}
        return cls(refs)
