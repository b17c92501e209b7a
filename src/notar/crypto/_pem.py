"""PEM blocks with RFC 1421 headers, as Go's ``encoding/pem`` reads and writes them."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509

from notar.crypto.errors import InvalidKeyError

__all__ = ["encode_pem", "load_certificate_bundle", "pem_blocks"]

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def pem_blocks(data: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """All PEM blocks in *data*: ``(type, headers, der)``; headers are the ``Key: value`` lines."""
    blocks = []
    for m in _BLOCK.finditer(data):
        kind = m.group(1).decode("ascii")
        body = m.group(2).decode("ascii", "replace")
        headers: dict[str, str] = {}
        lines = body.splitlines()
        if lines and ":" in lines[0]:
            while lines and lines[0].strip():
                name, _, value = lines.pop(0).partition(":")
                headers[name.strip()] = value.strip()
        b64 = "".join(line.strip() for line in lines)
        try:
            der = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidKeyError(f"{kind} PEM block has invalid base64") from e
        blocks.append((kind, headers, der))
    return blocks


def encode_pem(kind: str, der: bytes, headers: dict[str, str] | None = None) -> bytes:
    """Encode like Go's ``pem.Encode``: headers sorted by name, a blank line, 64-column base64."""
    out = [f"-----BEGIN {kind}-----\n"]
    if headers:
        out.extend(f"{name}: {headers[name]}\n" for name in sorted(headers))
        out.append("\n")
    b64 = base64.b64encode(der).decode("ascii")
    out.extend(b64[i : i + 64] + "\n" for i in range(0, len(b64), 64))
    out.append(f"-----END {kind}-----\n")
    return "".join(out).encode("ascii")


def load_certificate_bundle(pem: bytes) -> list[x509.Certificate]:
    """Parse a PEM bundle that must hold only ``CERTIFICATE`` blocks (at least one)."""
    blocks = pem_blocks(pem)
    if not blocks:
        raise InvalidKeyError("no certificate found in PEM data")
    certs = []
    for kind, _headers, der in blocks:
        if kind != "CERTIFICATE":
            raise InvalidKeyError(f"invalid PEM block type {kind!r} in certificate bundle")
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as e:
            raise InvalidKeyError(f"invalid certificate: {e}") from e
    return certs
