"""Test helpers: push images, OCI image layouts and small artifact manifests (referrers) with the library.

:func:`push_oci_layout` copies an OCI image layout into a registry as it is stored: every manifest by
digest (children first, with their blobs), then each ``org.opencontainers.image.ref.name`` of
``index.json`` as a tag -- which is how the notation e2e layouts keep their ``sha256-<hex>`` referrers
tag index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from notar.registry import MEDIA_TYPE_OCI_EMPTY, MEDIA_TYPE_OCI_MANIFEST, RegistryClient
from tests.registry.images import REF_NAME, Image, sha256

EMPTY = b"{}"
EMPTY_DESCRIPTOR = {"mediaType": MEDIA_TYPE_OCI_EMPTY, "digest": sha256(EMPTY), "size": len(EMPTY)}
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def push_image(client: RegistryClient, repo: str, image: Image, tag: str | None = None) -> str:
    """Push an image's blobs and manifest (by digest, and under *tag*); returns the manifest digest."""
    for blob in image.blobs:
        client.push_blob(repo, blob.digest, blob.data, blob.size)
    digest = client.put_manifest(repo, image.manifest.digest, image.manifest.data, image.manifest.media_type)
    if tag is not None:
        client.put_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    return digest


def artifact(
    subject: Image,
    payload: bytes,
    *,
    artifact_type: str = NOTATION_SIGNATURE,
    layer_type: str = "application/jose+json",
    annotations: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """An artifact manifest (current form: ``artifactType`` + empty config) referring to *subject*, and its blobs."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_DESCRIPTOR,
        "layers": [{"mediaType": layer_type, "digest": sha256(payload), "size": len(payload)}],
        "subject": subject.manifest.descriptor(),
        "annotations": dict(annotations or {"org.opencontainers.image.created": "2026-12-02T00:00:00Z"}),
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    return data, {sha256(EMPTY): EMPTY, sha256(payload): payload}


def push_oci_layout(client: RegistryClient, repo: str, layout: Path) -> dict[str, str]:
    """Copy the OCI image layout *layout* into *repo*; returns ``{tag: digest}`` of ``index.json``'s names."""

    def blob(digest: str) -> bytes:
        algorithm, _, encoded = digest.partition(":")
        return (layout / "blobs" / algorithm / encoded).read_bytes()

    pushed: set[str] = set()

    def put(descriptor: Mapping[str, object]) -> bytes:
        digest, media_type = str(descriptor["digest"]), str(descriptor["mediaType"])
        data = blob(digest)
        if digest not in pushed:
            body = json.loads(data)
            for child in body.get("manifests", []):
                put(child)
            for item in [body.get("config"), *body.get("layers", [])]:
                if item is not None:
                    client.push_blob(repo, item["digest"], blob(item["digest"]), item["size"])
            client.put_manifest(repo, digest, data, media_type)
            pushed.add(digest)
        return data

    tags: dict[str, str] = {}
    for entry in json.loads((layout / "index.json").read_text())["manifests"]:
        data = put(entry)
        tag = entry.get("annotations", {}).get(REF_NAME)
        if tag is not None:
            tags[tag] = client.put_manifest(repo, tag, data, entry["mediaType"])
    return tags
