"""Read Notation signatures out of the OCI image layouts in tests/vectors/notation (test helper).

``index.json`` -> the tag ``sha256-<hex>`` (referrers tag schema) -> its OCI index -> each signature
manifest -> its envelope blob. The subject is the manifest the signature manifest's ``subject`` names,
else (old form without ``subject``) the manifest the tag names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from notar.notation import Descriptor, SignatureBlob, SignatureManifestError, parse_signature_manifest
from notar.notation.manifest import SignatureManifest, check_blob


@dataclass(frozen=True)
class LayoutSignature:
    """One signature manifest of a layout: its digest, parsed form (or the error), and envelope bytes."""

    manifest_digest: str
    manifest: SignatureManifest | None
    error: SignatureManifestError | None
    layer: Descriptor
    blob: bytes
    subject: Descriptor

    def as_blob(self) -> SignatureBlob:
        return SignatureBlob(self.layer.media_type, self.blob, label=self.manifest_digest)


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, _, encoded = digest.partition(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()


def read_signatures(layout: Path) -> list[LayoutSignature]:
    index = json.loads((layout / "index.json").read_text())
    by_digest = {m["digest"]: m for m in index["manifests"]}
    out = []
    for entry in index["manifests"]:
        tag = entry.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
        if not tag.startswith("sha256-"):
            continue
        tagged = by_digest["sha256:" + tag.removeprefix("sha256-")]
        tag_subject = Descriptor(tagged["mediaType"], tagged["digest"], tagged["size"])
        referrers = json.loads(_blob(layout, entry["digest"]))
        for ref in referrers["manifests"]:
            data = _blob(layout, ref["digest"])
            check_blob(Descriptor.from_json(ref, what="referrer"), data)
            raw = json.loads(data)
            layer = Descriptor.from_json(raw["layers"][0], what="layer")
            try:
                manifest: SignatureManifest | None = parse_signature_manifest(data)
                error = None
            except SignatureManifestError as e:
                manifest, error = None, e
            subject = tag_subject
            if manifest is not None and manifest.subject is not None:
                subject = manifest.subject
            blob = _blob(layout, layer.digest)
            check_blob(layer, blob)
            out.append(LayoutSignature(ref["digest"], manifest, error, layer, blob, subject))
    return out
