"""Signature artifacts as the gateway tells them apart from content: tags, manifest shapes, superset rules.

Signatures live in the registry next to the image, and a trust-enforcing gateway must serve and accept
them without letting anything else through the same door. What counts, judged on the (digest-checked)
manifest bytes, never on a tag name or a ``subject`` alone:

* a **signature manifest** -- an image manifest with at least one layer, every layer of a signature
  media type: Notation envelopes (``application/jose+json``, ``application/cose``), cosign's
  simplesigning payloads, sigstore bundles. No filesystem layer can hide in it, so serving one unsigned
  exposes no content. Notation's own shape (:func:`notar.notation.is_signature_manifest`) and cosign's
  ``.sig`` shape are told apart for messages;
* a **referrers index** -- the OCI index of the referrers tag schema: every entry an image manifest
  descriptor that carries an ``artifactType`` (a multi-platform index has none). Its entries are fetched
  by digest, where the rules above apply again.

Signature tags: ``sha256-<hex>`` (the referrers tag schema) must hold a referrers index, and
``sha256-<hex>.sig`` (cosign) a signature manifest of simplesigning layers. Replacing either through
the gateway must keep what is there (:func:`dropped_entries`, :func:`dropped_layers`): a signer may
add its signature, never remove another's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from notar.notation import ENVELOPE_MEDIA_TYPES, is_signature_manifest
from notar.registry.manifest import (
    IMAGE_MEDIA_TYPES,
    MEDIA_TYPE_COSIGN_SIMPLESIGNING,
    MEDIA_TYPE_OCI_INDEX,
)

__all__ = [
    "Kind",
    "added_items",
    "TagKind",
    "classify",
    "dropped_entries",
    "dropped_layers",
    "signature_tag",
    "subject_of",
]

_REFERRERS_TAG: Final = re.compile(r"sha256-([0-9a-f]{64})\Z")
_COSIGN_TAG: Final = re.compile(r"sha256-([0-9a-f]{64})\.sig\Z")
_SIGSTORE_BUNDLE_PREFIX: Final = "application/vnd.dev.sigstore.bundle"
SIGNATURE_LAYER_TYPES: Final = frozenset({*ENVELOPE_MEDIA_TYPES, MEDIA_TYPE_COSIGN_SIMPLESIGNING})


class TagKind(StrEnum):
    """A tag that holds signatures rather than content."""

    REFERRERS = "referrers index"  # sha256-<hex>: the referrers tag schema
    COSIGN = "cosign signatures"  # sha256-<hex>.sig


class Kind(StrEnum):
    """What a manifest is, as far as signatures go."""

    NOTATION = "Notation signature"
    COSIGN = "cosign signature manifest"
    SIGNATURE = "signature artifact"  # another signature format (a sigstore bundle)
    REFERRERS_INDEX = "referrers index"


def signature_tag(tag: str) -> tuple[TagKind, str] | None:
    """``(kind, subject digest)`` of a signature tag, or ``None`` for a tag that names content."""
    m = _REFERRERS_TAG.match(tag)
    if m is not None:
        return TagKind.REFERRERS, f"sha256:{m[1]}"
    m = _COSIGN_TAG.match(tag)
    if m is not None:
        return TagKind.COSIGN, f"sha256:{m[1]}"
    return None


def _signature_layer(media_type: object) -> bool:
    return isinstance(media_type, str) and (
        media_type in SIGNATURE_LAYER_TYPES or media_type.startswith(_SIGSTORE_BUNDLE_PREFIX)
    )


def _layer_types(body: Mapping[str, Any]) -> list[object] | None:
    layers = body.get("layers")
    if not isinstance(layers, list) or not layers:
        return None
    types = [layer.get("mediaType") if isinstance(layer, dict) else None for layer in layers]
    return types if all(_signature_layer(t) for t in types) else None


def classify(body: Mapping[str, Any] | None, media_type: str) -> Kind | None:
    """The kind of signature artifact a manifest is (``None``: content, or nothing recognisable)."""
    if body is None:
        return None
    if media_type in IMAGE_MEDIA_TYPES:
        types = _layer_types(body)
        if types is None:
            return None
        if all(t == MEDIA_TYPE_COSIGN_SIMPLESIGNING for t in types):
            return Kind.COSIGN
        if is_signature_manifest(body) and all(t in ENVELOPE_MEDIA_TYPES for t in types):
            return Kind.NOTATION
        return Kind.SIGNATURE
    if media_type == MEDIA_TYPE_OCI_INDEX:
        entries = body.get("manifests")
        if not isinstance(entries, list):
            return None
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("mediaType") not in IMAGE_MEDIA_TYPES:
                return None
            artifact_type = entry.get("artifactType")
            if not isinstance(artifact_type, str) or not artifact_type:
                return None
        return Kind.REFERRERS_INDEX
    return None


def subject_of(body: Mapping[str, Any]) -> str | None:
    """The digest a manifest's ``subject`` names, if it has one."""
    subject = body.get("subject")
    digest = subject.get("digest") if isinstance(subject, dict) else None
    return digest if isinstance(digest, str) else None


def _identity(item: object, *, with_annotations: bool) -> str | None:
    if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
        return None
    keys = ("mediaType", "digest", "size", "artifactType") + (("annotations",) if with_annotations else ())
    return json.dumps({k: item.get(k) for k in keys}, sort_keys=True)


def _dropped(current: list[object], new: list[object], *, with_annotations: bool) -> list[str]:
    kept = {_identity(item, with_annotations=with_annotations) for item in new}
    out = []
    for item in current:
        identity = _identity(item, with_annotations=with_annotations)
        if identity is not None and identity not in kept:
            assert isinstance(item, dict)
            out.append(str(item["digest"]))
    return out


def _items(body: Mapping[str, Any] | None, key: str) -> list[object]:
    value = body.get(key) if body is not None else None
    return value if isinstance(value, list) else []


def added_items(current: Mapping[str, Any] | None, new: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The ``manifests`` (*key*) entries or ``layers`` of *new* that *current* does not have (all of them
    when there is no current document), as found; an item without a digest counts as added too."""
    with_annotations = key == "layers"
    have = {_identity(item, with_annotations=with_annotations) for item in _items(current, key)}
    out = []
    for item in _items(new, key):
        identity = _identity(item, with_annotations=with_annotations)
        if identity is None or identity not in have:
            out.append(item if isinstance(item, dict) else {})
    return out


def dropped_entries(current: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Digests of the entries of referrers index *current* that *new* does not keep (same media type,
    digest, size and artifactType; annotations may be rewritten, as clients re-encode them)."""
    old, now = current.get("manifests"), new.get("manifests")
    return _dropped(
        old if isinstance(old, list) else [], now if isinstance(now, list) else [], with_annotations=False
    )


def dropped_layers(current: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Payload digests of the layers of ``.sig`` manifest *current* that *new* does not keep. A layer is
    its payload *and* its annotations: two signers of one image have the same payload and different
    signature annotations."""
    old, now = current.get("layers"), new.get("layers")
    return _dropped(
        old if isinstance(old, list) else [], now if isinstance(now, list) else [], with_annotations=True
    )
