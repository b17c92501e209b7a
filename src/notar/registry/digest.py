"""Content digests (``algorithm:hex``) as OCI / go-digest define them.

Only the algorithms go-digest registers are accepted: ``sha256`` (the canonical one), ``sha384`` and
``sha512``; the hex part must be lower case and of the algorithm's exact length.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from notar.registry.errors import InvalidDigestError

__all__ = [
    "DIGEST_ALGORITHMS",
    "DigestHasher",
    "compute_digest",
    "validate_digest",
]

# algorithm -> length of the hex encoding
DIGEST_ALGORITHMS: Final = {"sha256": 64, "sha384": 96, "sha512": 128}

# go-digest's DigestRegexp: algorithm components, a colon, an encoded part.
_DIGEST_SHAPE: Final = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def validate_digest(text: str) -> str:
    """Return ``text`` if it is a valid, supported digest; raise :class:`InvalidDigestError` otherwise."""
    if not isinstance(text, str) or not _DIGEST_SHAPE.fullmatch(text):
        raise InvalidDigestError(f"invalid digest {text!r}: expected 'algorithm:hex', e.g. 'sha256:<64 hex>'")
    algorithm, _, encoded = text.partition(":")
    length = DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        supported = ", ".join(DIGEST_ALGORITHMS)
        raise InvalidDigestError(
            f"invalid digest {text!r}: unsupported algorithm {algorithm!r} ({supported})"
        )
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidDigestError(
            f"invalid digest {text!r}: {algorithm} needs exactly {length} lower-case hex digits"
        )
    return text


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of ``data`` (``sha256:<hex>`` by default)."""
    hasher = DigestHasher(algorithm)
    hasher.update(data)
    return hasher.digest()


class DigestHasher:
    """Incremental digest computation: ``update()`` chunks, then ``digest()`` and ``size``."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in DIGEST_ALGORITHMS:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    @classmethod
    def for_digest(cls, digest: str) -> DigestHasher:
        """A hasher using the algorithm of ``digest`` (which is validated)."""
        return cls(validate_digest(digest).partition(":")[0])

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"
