"""What a manifest is: its media types, how its kind is told, and the value types the registry client returns.

The one home of these shapes for every layer above: the registry client, the gateway and the transfer
package import the media types, :data:`MAX_INDEX_DEPTH` and the helpers from here.

* :func:`media_type_of` -- the bare, lower-case media type of a ``Content-Type`` header.
* :func:`json_object` -- bytes as a JSON object, or None (malformed or too deeply nested JSON, another value).
* :func:`manifest_shape` -- index or image manifest, by the fields of a body without ``mediaType``.
* :func:`manifest_media_type` -- the media type of fetched manifest bytes, checked against ``Content-Type``.
* :func:`is_nondistributable` -- foreign layers, which registries and layouts may lack.

The types of the artifacts that refer to a manifest (signatures) are here too: the OCI empty config,
Notation's signature artifact type and cosign's simplesigning layer; how referrers are found and added is
in :mod:`notar.registry.referrers`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from notar.registry.digest import validate_digest
from notar.registry.errors import RegistryProtocolError, UnsupportedManifestError

__all__ = [
    "ACCEPTED_MANIFEST_TYPES",
    "IMAGE_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "ARTIFACT_TYPE_NOTATION_SIGNATURE",
    "MAX_INDEX_DEPTH",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_DOCKER_MANIFEST_LIST",
    "MEDIA_TYPE_DOCKER_SCHEMA1",
    "MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED",
    "MEDIA_TYPE_COSIGN_SIMPLESIGNING",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_EMPTY",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_MANIFEST",
    "SCHEMA1_MEDIA_TYPES",
    "SCHEMA1_REFUSAL",
    "Descriptor",
    "Manifest",
    "is_nondistributable",
    "json_object",
    "manifest_media_type",
    "manifest_shape",
    "media_type_of",
]

MEDIA_TYPE_DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MEDIA_TYPE_OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
#: The config (and the 2-byte ``{}`` blob) of an artifact manifest that has no config of its own.
MEDIA_TYPE_OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
#: A Notation signature manifest: its ``artifactType`` (current form) or ``config.mediaType`` (older form).
ARTIFACT_TYPE_NOTATION_SIGNATURE: Final = "application/vnd.cncf.notary.signature"
#: A layer of cosign's ``sha256-<hex>.sig`` manifest: one signed payload per layer.
MEDIA_TYPE_COSIGN_SIMPLESIGNING: Final = "application/vnd.dev.cosign.simplesigning.v1+json"

# The types notar asks for, in order of preference (sent as the Accept header).
ACCEPTED_MANIFEST_TYPES: Final = (
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST,
)
INDEX_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES: Final = INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES  # the accepted ones, as a set
SCHEMA1_MEDIA_TYPES: Final = frozenset({MEDIA_TYPE_DOCKER_SCHEMA1, MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED})
SCHEMA1_REFUSAL: Final = (
    "Docker schema 1 manifests are deprecated and not supported; push the image again with a "
    "current docker, buildah or skopeo (schema 2 or OCI)"
)

#: How far below the top manifest a manifest may stand: the entries of an index are one level down, those
#: of an index listed there two, and so on. Pushes and pulls refuse deeper nesting; the gateway does not
#: look deeper for the children of a signed index.
MAX_INDEX_DEPTH: Final = 4

_GENERIC_TYPES: Final = frozenset({"", "application/json", "application/octet-stream"})


def media_type_of(content_type: str | None) -> str:
    """The media type a ``Content-Type`` value names: lower case, without parameters (``""`` if none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def json_object(data: bytes) -> dict[str, object] | None:
    """``data`` parsed as a JSON object; None for anything else: malformed JSON, JSON nested deeper than
    the parser goes (``RecursionError``), or another JSON value."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def manifest_shape(body: dict[str, object]) -> str | None:
    """OCI index or OCI image manifest, by the fields a body without ``mediaType`` has; ``None`` if unclear."""
    has_config, has_manifests = "config" in body, "manifests" in body
    if has_manifests and not has_config:
        return MEDIA_TYPE_OCI_INDEX
    if has_config and not has_manifests:
        return MEDIA_TYPE_OCI_MANIFEST
    return None


def manifest_media_type(content_type: str | None, data: bytes) -> str:
    """The media type of manifest bytes fetched with ``Content-Type`` *content_type*, one of
    :data:`ACCEPTED_MANIFEST_TYPES`.

    Raises :class:`UnsupportedManifestError` for schema 1 and other types, and
    :class:`RegistryProtocolError` for what is no manifest or contradicts the header (the messages name
    neither the registry nor the manifest: the caller adds them).
    """
    header_type = media_type_of(content_type)
    body = json_object(data)
    if body is None:
        raise RegistryProtocolError("the manifest is not a JSON object")
    schema, field_type = body.get("schemaVersion"), body.get("mediaType")
    if header_type in SCHEMA1_MEDIA_TYPES or schema == 1:
        raise UnsupportedManifestError(SCHEMA1_REFUSAL)
    if schema != 2:
        raise UnsupportedManifestError(f"unsupported schemaVersion {schema!r}")
    generic = header_type in _GENERIC_TYPES
    if field_type is None and (generic or header_type in MANIFEST_MEDIA_TYPES):
        # no mediaType in the (digest-checked) body: the body's shape decides, never the header alone,
        # which the registry controls (an image manifest served as an index would pull as nothing)
        shape = manifest_shape(body)
        if shape is None:
            raise RegistryProtocolError("the manifest has neither a config nor a manifests list")
        if header_type in MANIFEST_MEDIA_TYPES:
            if (header_type in INDEX_MEDIA_TYPES) != (shape == MEDIA_TYPE_OCI_INDEX):
                raise RegistryProtocolError(f"Content-Type {header_type} does not fit the manifest")
            return header_type
        return shape
    if header_type in MANIFEST_MEDIA_TYPES:
        if field_type != header_type:
            raise RegistryProtocolError(f"Content-Type {header_type} but mediaType {field_type!r}")
        return header_type
    if generic and isinstance(field_type, str) and field_type in MANIFEST_MEDIA_TYPES:
        return field_type
    shown = header_type or field_type
    raise UnsupportedManifestError(f"unsupported manifest media type {shown!r}")


def is_nondistributable(media_type: str) -> bool:
    """A foreign / non-distributable layer type (Windows base layers): clients fetch such layers from
    the ``urls`` of their descriptor, so registries and layouts may lack them."""
    return "nondistributable" in media_type or "foreign" in media_type


@dataclass(frozen=True)
class Descriptor:
    """Media type, digest and size of a piece of content (what a HEAD request tells)."""

    media_type: str
    digest: str
    size: int

    def __post_init__(self) -> None:
        validate_digest(self.digest)
        if self.size < 0:
            raise ValueError(f"negative size {self.size}")


@dataclass(frozen=True)
class Manifest:
    """A manifest as fetched: its exact bytes, their verified digest and size, and its media type.

    ``digest`` is always the digest of ``data`` (the client checks it); ``size == len(data)``.
    """

    digest: str
    size: int
    media_type: str
    data: bytes = field(repr=False)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)

    @property
    def is_index(self) -> bool:
        """True for an OCI image index or a Docker manifest list (a multi-platform image)."""
        return self.media_type in INDEX_MEDIA_TYPES

    def json(self) -> dict[str, object]:
        """The manifest parsed as a JSON object."""
        try:
            value = json.loads(self.data)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise RegistryProtocolError(f"manifest {self.digest} is not valid JSON: {e}") from e
        if not isinstance(value, dict):
            raise RegistryProtocolError(f"manifest {self.digest} is not a JSON object")
        return value

    def references(self) -> list[Descriptor]:
        """The content this manifest points to: config and layers, or the manifests of an index."""
        body = self.json()
        items: list[object]
        if self.is_index:
            if "manifests" not in body:
                raise RegistryProtocolError(f"index {self.digest} has no manifests list")
            items = _as_list(body.get("manifests"))
        else:
            if not isinstance(body.get("config"), dict):
                raise RegistryProtocolError(f"manifest {self.digest} has no config descriptor")
            items = [body.get("config"), *_as_list(body.get("layers"))]
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise RegistryProtocolError(f"manifest {self.digest}: malformed descriptor {item!r}")
            media_type, digest, size = item.get("mediaType", ""), item.get("digest"), item.get("size")
            if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int:
                raise RegistryProtocolError(f"manifest {self.digest}: malformed descriptor {item!r}")
            try:
                out.append(Descriptor(media_type, digest, size))
            except ValueError as e:
                raise RegistryProtocolError(f"manifest {self.digest}: {e}") from e
        return out


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryProtocolError(f"expected a JSON array, got {type(value).__name__}")
    return value
