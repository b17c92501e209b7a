"""References to keys held elsewhere (AWS KMS): ``<trust_dir>/private/<canonical key ID>.kms``.

A signer whose private key lives in a key service has no key file; what the trust directory keeps is a
pointer to the key and its public key, so that ``notar sign`` finds the signer by key ID as it finds a
file key, and ``notar key list`` shows it::

    {"uri": "awskms:///alias/release-signer", "role": "ci",
     "public_key": "-----BEGIN PUBLIC KEY-----\\n...\\n-----END PUBLIC KEY-----\\n"}

* notary 0.7 and the docker CLI list only ``*.key`` files in ``private/`` (checked with ``notary key
  list``), so they never see it; the file holds no secret (mode 0600 all the same, like its directory);
* the public key is stored so that the key ID is known without asking the service, and so that a
  signature the service returns can be checked against the key the signer was added with (an alias that
  now points to another key is caught before anything is published);
* the file name must be the public key's canonical key ID: a reference cannot claim another key's ID.

This module only encodes and decodes; :class:`notar.keystore.FileKeyStore` stores. What the URI means is
the key service's business (:mod:`notar.kms`); the store only checks that it looks like one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from notar.crypto import CryptoError, PublicKey, encode_pem
from notar.keystore._keyfile import valid_header_value
from notar.keystore.errors import KeyFileError

__all__ = [
    "MAX_REFERENCE_BYTES",
    "REFERENCE_EXTENSION",
    "KeyReference",
    "decode_reference",
    "encode_reference",
]

REFERENCE_EXTENSION: Final = ".kms"
MAX_REFERENCE_BYTES: Final = 64 * 1024
_URI = re.compile(r"[a-z][a-z0-9+.-]*://[\x21-\x7e]{1,2048}\Z")


@dataclass(frozen=True, slots=True)
class KeyReference:
    """A signer key held by a key service: where (``uri``), whose (``role``, the signer name), which key."""

    uri: str
    role: str
    public_key: PublicKey
    path: Path | None = None

    @property
    def key_id(self) -> str:
        """The canonical key ID (the file's name)."""
        return self.public_key.key_id


def encode_reference(ref: KeyReference) -> bytes:
    """The JSON file for *ref* (keys sorted, one line, newline-terminated)."""
    _check(ref.uri, ref.role, "reference")
    bare = ref.public_key.bare()
    if bare.keytype not in ("ecdsa", "rsa"):
        raise KeyFileError(f"reference: {bare.keytype} keys are not key service keys")
    pem = encode_pem("PUBLIC KEY", bare.public).decode("ascii")
    doc = {"public_key": pem, "role": ref.role, "uri": ref.uri}
    return (json.dumps(doc, sort_keys=True) + "\n").encode("ascii")


def _check(uri: Any, role: Any, what: str) -> None:
    if not isinstance(uri, str) or not _URI.match(uri):
        raise KeyFileError(f"{what}: {str(uri)[:100]!r} is not a key service URI (like awskms:///alias/NAME)")
    if not isinstance(role, str) or not role or not valid_header_value(role):
        raise KeyFileError(f"{what}: invalid role {str(role)[:100]!r}")


def decode_reference(data: bytes, *, what: str, key_id: str | None = None) -> KeyReference:
    """Parse a reference file; *key_id* (the file's name) must be its public key's ID.

    Every problem is a one-line :class:`KeyFileError` that starts with *what*.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise KeyFileError(f"{what}: not a key reference (invalid JSON: {e})") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{what}: not a key reference (expected a JSON object)")
    uri, role, pem = doc.get("uri"), doc.get("role"), doc.get("public_key")
    _check(uri, role, what)
    if not isinstance(pem, str):
        raise KeyFileError(f"{what}: no public_key")
    try:
        public = PublicKey.from_pem(pem.encode("ascii")).bare()
    except (CryptoError, UnicodeEncodeError) as e:
        raise KeyFileError(f"{what}: public_key: {e}") from None
    if key_id is not None and public.key_id != key_id:
        raise KeyFileError(f"{what}: holds the public key {public.key_id[:7]}, not {key_id[:7]}")
    return KeyReference(uri=str(uri), role=str(role), public_key=public)
