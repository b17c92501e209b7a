"""What the manifest handlers of :mod:`notar.gateway.manifests` pass between them.

* :class:`ManifestRef` / :func:`parse_manifest_ref` -- the checked repository and reference of a
  ``/v2/<name>/manifests/<reference>`` path;
* :class:`Fetched` -- manifest bytes as the registry served them (or a client pushed them), with their
  media type and digest;
* what such bytes say: their media type (:func:`manifest_type`), the kind of signature artifact they are
  (:func:`kind_of`), the manifests an index lists (:func:`index_entries`);
* :func:`request_header` -- one header of the client's request.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.types import Scope

from notar.gateway.errors import GatewayError
from notar.registry import InvalidDigestError, InvalidReferenceError, validate_digest
from notar.registry.artifacts import Kind, classify
from notar.registry.manifest import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    json_object,
    manifest_shape,
    media_type_of,
)
from notar.registry.reference import validate_repository, validate_tag

__all__ = [
    "Fetched",
    "ManifestRef",
    "index_entries",
    "kind_of",
    "manifest_type",
    "parse_manifest_ref",
    "request_header",
]

_OCTET_STREAM: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """``/v2/<name>/manifests/<reference>``: a tag or a digest of repository *name*."""

    name: str
    tag: str | None
    digest: str | None

    def show(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag is not None else f"{self.name}@{self.digest}"


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    media_type: str
    digest: str  # sha256 of data ("" for a body not yet pushed, where it is not needed)


def parse_manifest_ref(name: str, ref: str) -> ManifestRef:
    """The checked repository name and reference of a manifest path (NAME/TAG/DIGEST_INVALID if not)."""
    try:
        validate_repository(name)
    except InvalidReferenceError as e:
        raise GatewayError("NAME_INVALID", str(e)) from e
    if len(name) > 255:
        raise GatewayError("NAME_INVALID", "repository name must be at most 255 characters")
    if ":" in ref:
        try:
            return ManifestRef(name, None, validate_digest(ref))
        except InvalidDigestError as e:
            raise GatewayError("DIGEST_INVALID", str(e)) from e
    try:
        return ManifestRef(name, validate_tag(ref), None)
    except InvalidReferenceError as e:
        raise GatewayError("TAG_INVALID", str(e)) from e


def kind_of(fetched: Fetched) -> Kind | None:
    """The kind of signature artifact fetched manifest bytes are, or ``None`` for content."""
    return classify(json_object(fetched.data), fetched.media_type)


def request_header(scope: Scope, name: bytes) -> str:
    for k, v in scope["headers"]:
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return ""


def index_entries(fetched: Fetched) -> list[tuple[str, str]]:
    """(digest, media type) of the manifests an index lists; empty for anything else."""
    if fetched.media_type not in INDEX_MEDIA_TYPES:
        return []
    body = json_object(fetched.data)
    entries = body.get("manifests") if body is not None else None
    out = []
    for m in entries if isinstance(entries, list) else []:
        if not isinstance(m, dict) or not isinstance(m.get("digest"), str):
            continue
        try:
            child = validate_digest(m["digest"])
        except InvalidDigestError:
            continue
        media_type = m.get("mediaType")
        out.append((child, media_type if isinstance(media_type, str) else ""))
    return out


def manifest_type(data: bytes, content_type: str) -> str:
    """The media type of verified manifest bytes: their own ``mediaType``, else the registry's header if it
    names a manifest type of the right kind, else what the body's shape says."""
    body = json_object(data)
    if body is None:
        return _OCTET_STREAM
    field = body.get("mediaType")
    if isinstance(field, str) and field:
        return field
    is_index = manifest_shape(body) == MEDIA_TYPE_OCI_INDEX
    header = media_type_of(content_type)
    if header in MANIFEST_MEDIA_TYPES and (header in INDEX_MEDIA_TYPES) == is_index:
        return header
    if is_index:
        return MEDIA_TYPE_OCI_INDEX
    if "config" in body:  # with a manifests list too: an image manifest, as the registry serves it
        return MEDIA_TYPE_OCI_MANIFEST
    return _OCTET_STREAM
