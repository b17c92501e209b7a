"""The cosign ``.sig`` image: tag ``sha256-<hex>.sig``, an OCI image manifest with one layer per signature.

What cosign (go-containerregistry ``mutate.Append`` on ``empty.Image``) writes, field order included::

    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":...,"digest":"sha256:..."},
     "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":...,
                "digest":"sha256:<payload>","annotations":{"dev.cosignproject.cosign/signature":"<b64 DER>"}}]}

and the config blob::

    {"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],
     "os":"","rootfs":{"type":"layers","diff_ids":["sha256:<payload>"]},"config":{}}

with one ``history`` entry and one ``diff_ids`` entry per layer (payloads are stored uncompressed, so a
diff ID is the layer digest). ``created`` is the zero time unless cosign was asked to record it.

Several signers share one ``.sig`` tag: :func:`append_signature` adds a layer to the manifest found
there and never drops one (an identical signature already present is not added twice). The caller
fetches the current manifest and its config blob, pushes the new blobs, and PUTs the manifest back;
a concurrent writer can win that race, so a registry writer re-reads and re-appends when the tag
changed under it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from notar.cosign.errors import CosignManifestError
from notar.cosign.sign import SIGNATURE_ANNOTATION, CosignSignature, go_json
from notar.encoding import EncodingError, GoTime, loads_strict
from notar.notation.descriptor import Descriptor

__all__ = [
    "MAX_MANIFEST_SIZE",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_MANIFEST",
    "CosignArtifact",
    "append_signature",
    "build_signature_manifest",
    "parse_sig_manifest",
    "signature_tag",
]

MEDIA_TYPE_OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
#: ``.sig`` manifests larger than this are refused before parsing (a registry's own manifest limit).
MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024
_ZERO_TIME: Final = "0001-01-01T00:00:00Z"


class CosignArtifact(NamedTuple):
    """What a registry writer pushes to the ``.sig`` tag.

    ``blobs`` holds only what this change added (the new config and the new payloads); the blobs of
    the layers that were already there are in the registry already. ``appended`` is ``False`` when the
    signature was there already (then ``manifest`` is the existing bytes, unchanged).
    """

    manifest: bytes
    descriptor: Descriptor
    blobs: dict[str, bytes]
    appended: bool = True


def signature_tag(digest: str) -> str:
    """The tag cosign stores signatures of *digest* under: ``sha256:<hex>`` -> ``sha256-<hex>.sig``."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded or not encoded.isalnum():
        raise CosignManifestError(f"{digest!r} is not a digest")
    return f"{algorithm}-{encoded}.sig"


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _created(created: datetime | str | None) -> str:
    if created is None:
        return _ZERO_TIME
    if isinstance(created, str):  # an RFC 3339 text kept as written (cosign 1.x wrote local nanoseconds)
        try:
            GoTime.parse(created, what="creation time")
        except EncodingError as e:
            raise CosignManifestError(str(e)) from None
        return created
    if created.tzinfo is None or created.utcoffset() is None:
        raise CosignManifestError("the creation time must be a timezone-aware datetime")
    return created.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config(signatures: Sequence[CosignSignature], created: datetime | str | None) -> dict[str, Any]:
    return {
        "architecture": "",
        "created": _created(created),
        "history": [{"created": _ZERO_TIME} for _ in signatures],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [s.digest for s in signatures]},
        "config": {},
    }


def _artifact(
    manifest: dict[str, Any], config: bytes, new: Sequence[CosignSignature], *, appended: bool = True
) -> CosignArtifact:
    data = go_json(manifest)
    blobs = {_digest(config): config}
    blobs.update((s.digest, s.payload) for s in new)
    return CosignArtifact(
        data, Descriptor(MEDIA_TYPE_OCI_MANIFEST, _digest(data), len(data)), blobs, appended
    )


def _config_descriptor(config: bytes) -> dict[str, Any]:
    return {"mediaType": MEDIA_TYPE_OCI_CONFIG, "size": len(config), "digest": _digest(config)}


def build_signature_manifest(
    signatures: Sequence[CosignSignature], *, created: datetime | str | None = None
) -> CosignArtifact:
    """A new ``.sig`` manifest holding *signatures* (one layer each, in order).

    *created* is the config's ``created`` time (``None``: the zero time, as cosign 2 writes by default;
    a datetime is written in UTC to the second; a string is an RFC 3339 time kept as written).
    """
    if not signatures:
        raise CosignManifestError("a .sig manifest needs at least one signature")
    config = go_json(_config(signatures, created))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": _config_descriptor(config),
        "layers": [s.layer() for s in signatures],
    }
    return _artifact(manifest, config, signatures)


def _load(data: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = loads_strict(data, what=what)
    except EncodingError as e:
        raise CosignManifestError(str(e)) from None
    if not isinstance(value, dict):
        raise CosignManifestError(f"{what}: expected a JSON object")
    return value


def parse_sig_manifest(data: bytes) -> dict[str, Any]:
    """Read a ``.sig`` manifest: size limit, strict JSON, ``schemaVersion`` 2, a config descriptor, a layer list.

    Layers are returned as found (they are judged one by one by the verifier; :func:`append_signature`
    keeps every one of them).
    """
    if len(data) > MAX_MANIFEST_SIZE:
        raise CosignManifestError(f".sig manifest is {len(data)} bytes; the limit is {MAX_MANIFEST_SIZE}")
    manifest = _load(data, what=".sig manifest")
    if manifest.get("schemaVersion") != 2:
        raise CosignManifestError(".sig manifest: schemaVersion must be 2")
    media_type = manifest.get("mediaType", MEDIA_TYPE_OCI_MANIFEST)
    if media_type not in (MEDIA_TYPE_OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"):
        raise CosignManifestError(f".sig manifest: mediaType {media_type!r} is not an image manifest")
    Descriptor.from_json(manifest.get("config"), what=".sig manifest config", error=CosignManifestError)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise CosignManifestError(".sig manifest: layers must be a list")
    return manifest


def append_signature(
    manifest: bytes | None,
    config: bytes | None,
    signature: CosignSignature,
    *,
    created: datetime | str | None = None,
) -> CosignArtifact:
    """Add *signature* as a new layer of the ``.sig`` manifest *manifest* (with its *config* blob).

    ``None`` for *manifest* (the tag does not exist yet) builds a new one. Every existing layer is kept,
    in order, with its annotations; the config gets one more ``diff_ids`` and ``history`` entry, its
    other fields are kept (a recorded ``created`` stays). A layer with the same payload digest and the
    same signature annotation means the signature is there already: the result is the unchanged
    manifest with ``appended=False``. Raises :class:`CosignManifestError` when *config* is not the blob
    the manifest names or either document is malformed.
    """
    if manifest is None:
        return build_signature_manifest([signature], created=created)
    parsed = parse_sig_manifest(manifest)
    if config is None:
        raise CosignManifestError("the .sig manifest's config blob is needed to append a signature")
    config_desc = Descriptor.from_json(
        parsed["config"], what=".sig manifest config", error=CosignManifestError
    )
    if len(config) != config_desc.size or _digest(config) != config_desc.digest:
        raise CosignManifestError(
            f"the config blob given is not {config_desc.digest} named by the .sig manifest"
        )
    for layer in parsed["layers"]:
        if (
            isinstance(layer, dict)
            and layer.get("digest") == signature.digest
            and isinstance(layer.get("annotations"), dict)
            and layer["annotations"].get(SIGNATURE_ANNOTATION) == signature.signature
        ):
            return CosignArtifact(
                manifest, Descriptor(MEDIA_TYPE_OCI_MANIFEST, _digest(manifest), len(manifest)), {}, False
            )
    image_config = _load(config, what=".sig config")
    rootfs = image_config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    if not isinstance(rootfs, dict):
        raise CosignManifestError(".sig config: rootfs must be an object")
    diff_ids = rootfs.setdefault("diff_ids", [])
    history = image_config.setdefault("history", [])
    if not isinstance(diff_ids, list) or not isinstance(history, list):
        raise CosignManifestError(".sig config: rootfs.diff_ids and history must be lists")
    diff_ids.append(signature.digest)
    history.append({"created": _ZERO_TIME})
    new_config = go_json(image_config)
    updated = dict(parsed)
    updated["config"] = {**parsed["config"], "size": len(new_config), "digest": _digest(new_config)}
    updated["layers"] = [*parsed["layers"], signature.layer()]
    return _artifact(updated, new_config, [signature])
