"""OCI content descriptors, as a Notation payload and a signature manifest carry them.

A descriptor names content by ``mediaType``, ``digest`` (``algorithm:hex``) and ``size``; Notation signs
one (the payload's ``targetArtifact``) and verification compares it with the descriptor of the manifest
the caller resolved. Only those three fields take part in the comparison (annotations are user metadata
and are returned, not matched), as in ``notation verify``.

JSON objects are read as Go reads them into structs, minus the ambiguity: a key that differs from a
known field only by case (``Digest``) is refused, since Go would fold it onto the field and Python
would not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from notar.encoding import go_fold

__all__ = ["Descriptor", "check_keys", "digest_of"]

# Registered OCI digest algorithms and the length of their lowercase hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"([a-z0-9]+):([0-9a-f]+)\Z")


def check_keys(obj: Mapping[str, Any], known: frozenset[str], *, what: str, error: type[Exception]) -> None:
    """Refuse keys of *obj* that are not in *known* but fold onto one of them the way Go matches fields."""
    folded = {go_fold(k): k for k in known}
    for key in obj:
        if key not in known and go_fold(key) in folded:
            raise error(f"{what}: key {key!r} is a case variant of {folded[go_fold(key)]!r}")


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest string of *data* (``sha256:<hex>`` by default)."""
    if algorithm not in _DIGEST_HEX_LENGTH:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass(frozen=True)
class Descriptor:
    """``mediaType`` + ``digest`` + ``size`` (+ optional ``annotations``, ``artifactType``)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    artifact_type: str | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, value: Any, *, what: str, error: type[Exception] = ValueError) -> Descriptor:
        """Read a descriptor object, raising *error* with a one-line message naming *what*."""
        if not isinstance(value, dict):
            raise error(f"{what}: expected a descriptor object")
        known = frozenset({"mediaType", "digest", "size", "annotations", "artifactType", "urls", "platform"})
        check_keys(value, known, what=what, error=error)
        media_type = value.get("mediaType")
        if not isinstance(media_type, str) or not media_type:
            raise error(f"{what}: mediaType must be a non-empty string")
        digest = value.get("digest")
        if not isinstance(digest, str):
            raise error(f"{what}: digest must be a string")
        m = _DIGEST.match(digest)
        if not m or _DIGEST_HEX_LENGTH.get(m.group(1)) != len(m.group(2)):
            raise error(f"{what}: digest {digest!r} is not a sha256 or sha512 digest in lowercase hex")
        size = value.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise error(f"{what}: size must be a non-negative integer")
        annotations = value.get("annotations", {})
        if annotations is None:
            annotations = {}
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise error(f"{what}: annotations must map strings to strings")
        artifact_type = value.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise error(f"{what}: artifactType must be a string")
        return cls(media_type, digest, size, dict(annotations), artifact_type)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (``annotations``/``artifactType`` only when set)."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def matches(self, other: Descriptor) -> bool:
        """Same media type, digest and size (annotations and artifact type are not compared)."""
        return (self.media_type, self.digest, self.size) == (other.media_type, other.digest, other.size)

    def __str__(self) -> str:
        return f"{self.digest} ({self.media_type}, {self.size} bytes)"
