"""cosign key-based signatures (notar.cosign): cosign's exact bytes, independent verification, appending.

(Kept with the Notation tests: one signing event makes both, and they share the key-access seam.)

* Golden: a ``cosign sign --key`` of ``index.docker.io/chihjenhuang/cosign1@sha256:4c1c50d0...``
  (cosign 1.13.1, a public debug trace of the registry traffic: payload blob sha256:b671489e... 252 bytes,
  config blob sha256:85ad8e17... 247 bytes, ``.sig`` manifest sha256:7ebe8964... 558 bytes) is rebuilt
  byte for byte from the reference, the digest, the signature annotation and the config time.
* What notar writes is verified here with ``cryptography`` directly, following cosign's
  SIGNATURE_SPEC (base64 annotation -> DER ECDSA over the payload bytes with SHA-256; the payload's
  ``critical`` names the digest), without calling :mod:`notar.cosign.verify`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from notar.cosign import (
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    CosignManifestError,
    CosignSignature,
    CosignSigningError,
    append_signature,
    build_signature_manifest,
    load_public_key,
    sign_image,
    signature_tag,
    simplesigning_payload,
    verify_signatures,
)
from notar.crypto import PrivateKey, PublicKey
from tests.notation.factory import key

REFERENCE = "registry.example.com/team/app"
DIGEST = "sha256:" + hashlib.sha256(b"the image manifest").hexdigest()

# cosign 1.13.1 signing chihjenhuang/cosign1 (see the module docstring)
GOLDEN_REFERENCE = "index.docker.io/chihjenhuang/cosign1"
GOLDEN_DIGEST = "sha256:4c1c50d0ffc614f90b93b07d778028dc765548e823f676fb027f61d281ac380d"
GOLDEN_SIGNATURE = (
    "MEYCIQCPH7NJAIfrB6BZN91dV0o7l/i11muXrvrAh100jDMMhAIhAPsLH0oXb2OPITXRpWBMUd3vHtz5Ks5pql2Hr6t/IJXw"
)
GOLDEN_CREATED = "2023-02-17T09:25:33.91047962-08:00"
GOLDEN_MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
    b'"application/vnd.oci.image.config.v1+json","size":247,"digest":"sha256:85ad8e17d3d7c00664855c638832bd99'
    b'f32d42542c2d587851410a45a7f60b95"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"'
    b',"size":252,"digest":"sha256:b671489ededd1a180bd87235bba00fd83354f9c7d13b71d9f8b66a8e52965ebc",'
    b'"annotations":{"dev.cosignproject.cosign/signature":"' + GOLDEN_SIGNATURE.encode() + b'"}}]}'
)


def pem(private: ec.EllipticCurvePrivateKey | Any) -> bytes:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signer(kind: str = "ec256") -> PrivateKey:
    return PrivateKey(key(kind))  # type: ignore[arg-type]


# --- cosign's own bytes --------------------------------------------------------------------------------


def test_payload_config_and_manifest_are_cosigns_bytes() -> None:
    payload = simplesigning_payload(GOLDEN_REFERENCE, GOLDEN_DIGEST)
    assert len(payload) == 252
    assert (
        hashlib.sha256(payload).hexdigest()
        == "b671489ededd1a180bd87235bba00fd83354f9c7d13b71d9f8b66a8e52965ebc"
    )
    assert payload.endswith(b',"type":"cosign container image signature"},"optional":null}')
    artifact = build_signature_manifest([CosignSignature(payload, GOLDEN_SIGNATURE)], created=GOLDEN_CREATED)
    assert artifact.manifest == GOLDEN_MANIFEST
    assert (
        artifact.descriptor.digest
        == "sha256:7ebe8964225fa4619b53aa35416ef0246c037e36ddf81776b21b15e1dda2262b"
    )
    assert artifact.descriptor.size == 558
    config = artifact.blobs["sha256:85ad8e17d3d7c00664855c638832bd99f32d42542c2d587851410a45a7f60b95"]
    assert len(config) == 247 and json.loads(config)["created"] == GOLDEN_CREATED


def test_default_config_is_cosign_2s_zero_time() -> None:
    artifact = build_signature_manifest([sign_image(REFERENCE, DIGEST, signer())])
    [config] = [b for d, b in artifact.blobs.items() if b.startswith(b'{"architecture"')]
    assert json.loads(config)["created"] == "0001-01-01T00:00:00Z"


def test_annotations_are_the_optional_object_written_like_go() -> None:
    payload = simplesigning_payload(REFERENCE, DIGEST, annotations={"z": "1", "a": "<&>"})
    assert payload.endswith(b'"optional":{"a":"\\u003c\\u0026\\u003e","z":"1"}}')
    assert json.loads(payload)["optional"] == {"a": "<&>", "z": "1"}


# --- independent verification --------------------------------------------------------------------------


def independently_verified(
    manifest: bytes, blobs: dict[str, bytes], public_pem: bytes, digest: str
) -> list[bool]:
    """cosign's SIGNATURE_SPEC, with nothing but json, base64 and cryptography."""
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    out = []
    for layer in json.loads(manifest)["layers"]:
        assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
        payload = blobs[layer["digest"]]
        assert layer["digest"] == "sha256:" + hashlib.sha256(payload).hexdigest() and layer["size"] == len(
            payload
        )
        der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"], validate=True)
        try:
            public.verify(der, payload, ec.ECDSA(hashes.SHA256()))
        except Exception:
            out.append(False)
            continue
        claims = json.loads(payload)
        out.append(
            claims["critical"]["type"] == "cosign container image signature"
            and claims["critical"]["image"]["docker-manifest-digest"] == digest
        )
    return out


def test_what_notar_writes_verifies_by_cosigns_spec() -> None:
    alice, bob = signer("ec256"), signer("ec256-b")
    first = sign_image(REFERENCE, DIGEST, alice, annotations={"signed-by": "alice"})
    second = sign_image(REFERENCE, DIGEST, bob)
    new = build_signature_manifest([first])
    config = next(b for b in new.blobs.values() if b.startswith(b'{"architecture"'))
    appended = append_signature(new.manifest, config, second)
    blobs = {**new.blobs, **appended.blobs}
    assert independently_verified(appended.manifest, blobs, pem(key("ec256")), DIGEST) == [True, False]
    assert independently_verified(appended.manifest, blobs, pem(key("ec256-b")), DIGEST) == [False, True]
    assert independently_verified(appended.manifest, blobs, pem(key("ec256")), "sha256:" + "1" * 64) == [
        False,
        False,
    ]
    # the config describes the layers as go-containerregistry does
    raw = json.loads(appended.manifest)
    [new_config] = [b for d, b in appended.blobs.items() if d == raw["config"]["digest"]]
    image_config = json.loads(new_config)
    assert image_config["rootfs"]["diff_ids"] == [layer["digest"] for layer in raw["layers"]]
    assert image_config["history"] == [{"created": "0001-01-01T00:00:00Z"}] * 2
    assert raw["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"


def test_notar_verifier_agrees() -> None:
    alice, bob = signer("ec256"), signer("ec256-b")
    artifact = build_signature_manifest(
        [sign_image(REFERENCE, DIGEST, alice), sign_image(REFERENCE, DIGEST, bob)]
    )
    results = verify_signatures(artifact.manifest, artifact.blobs, pem(key("ec256")), digest=DIGEST)
    assert [r.verified for r in results] == [True, False]
    assert results[0].docker_reference == REFERENCE and "does not verify" in results[1].reason
    results = verify_signatures(
        artifact.manifest, artifact.blobs, pem(key("ec256")), digest=DIGEST, docker_reference="other/repo"
    )
    assert not results[0].verified and "names 'registry.example.com/team/app'" in results[0].reason
    results = verify_signatures(
        artifact.manifest, artifact.blobs, pem(key("ec256")), digest="sha256:" + "2" * 64
    )
    assert not results[0].verified and "payload signs" in results[0].reason


# --- appending -----------------------------------------------------------------------------------------


def test_append_keeps_every_existing_layer_and_field() -> None:
    existing = build_signature_manifest([sign_image(REFERENCE, DIGEST, signer())], created=GOLDEN_CREATED)
    raw = json.loads(existing.manifest)
    # someone else's layer (another media type, extra annotations) and a manifest annotation
    foreign = {"mediaType": "application/vnd.example+json", "size": 2, "digest": "sha256:" + "a" * 64}
    raw["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"] = "{}"
    raw["layers"].append(foreign)
    raw["annotations"] = {"org.example": "kept"}
    config = next(b for b in existing.blobs.values() if b.startswith(b'{"architecture"'))
    manifest = json.dumps(raw, separators=(",", ":")).encode()
    new_signature = sign_image(REFERENCE, DIGEST, signer("ec384"))
    result = append_signature(manifest, config, new_signature)
    out = json.loads(result.manifest)
    assert result.appended and out["layers"][:2] == raw["layers"] and out["annotations"] == raw["annotations"]
    assert out["layers"][2] == new_signature.layer()
    assert set(result.blobs) == {out["config"]["digest"], new_signature.digest}
    assert json.loads(result.blobs[out["config"]["digest"]])["created"] == GOLDEN_CREATED  # kept


def test_the_same_signature_is_not_appended_twice() -> None:
    signature = sign_image(REFERENCE, DIGEST, signer())
    existing = build_signature_manifest([signature])
    config = next(b for b in existing.blobs.values() if b.startswith(b'{"architecture"'))
    again = append_signature(existing.manifest, config, signature)
    assert not again.appended and again.manifest == existing.manifest and again.blobs == {}
    assert again.descriptor == existing.descriptor


def test_append_to_nothing_builds_a_new_manifest() -> None:
    signature = sign_image(REFERENCE, DIGEST, signer())
    assert append_signature(None, None, signature).manifest == build_signature_manifest([signature]).manifest


def test_append_refuses_a_config_that_is_not_the_manifests() -> None:
    existing = build_signature_manifest([sign_image(REFERENCE, DIGEST, signer())])
    signature = sign_image(REFERENCE, DIGEST, signer("ec256-b"))
    with pytest.raises(CosignManifestError, match="is not sha256:"):
        append_signature(existing.manifest, b"{}", signature)
    with pytest.raises(CosignManifestError, match="config blob is needed"):
        append_signature(existing.manifest, None, signature)
    with pytest.raises(CosignManifestError, match="schemaVersion"):
        append_signature(b'{"layers":[]}', b"{}", signature)
    with pytest.raises(CosignManifestError, match="duplicate|JSON"):
        append_signature(b'{"schemaVersion":2,"schemaVersion":2}', b"{}", signature)


# --- verifier details ----------------------------------------------------------------------------------


def test_layer_failures_are_reported_one_by_one() -> None:
    good = sign_image(REFERENCE, DIGEST, signer())
    artifact = build_signature_manifest([good])
    raw = json.loads(artifact.manifest)
    layer = raw["layers"][0]
    tampered_payload = good.payload.replace(b"team", b"evil")
    variants: list[tuple[dict[str, Any], dict[str, bytes], str]] = [
        ({**layer, "mediaType": "application/json"}, artifact.blobs, "not a simplesigning"),
        ({**layer, "annotations": {}}, artifact.blobs, "no dev.cosignproject.cosign/signature"),
        ({**layer, "annotations": {SIGNATURE_ANNOTATION: "%%%"}}, artifact.blobs, "not standard base64"),
        (layer, {}, "payload blob not provided"),
        (layer, {layer["digest"]: tampered_payload}, "does not match the layer's digest"),
        (
            {**layer, "digest": "sha256:" + hashlib.sha256(tampered_payload).hexdigest()},
            {"sha256:" + hashlib.sha256(tampered_payload).hexdigest(): tampered_payload},
            "signature does not verify",
        ),
        ({"mediaType": 1}, artifact.blobs, "mediaType must be a non-empty string"),
    ]
    for variant, blobs, reason in variants:
        manifest = json.dumps({**raw, "layers": [variant]}).encode()
        [result] = verify_signatures(manifest, blobs, pem(key("ec256")), digest=DIGEST)
        assert not result.verified and reason in result.reason, (reason, result.reason)


def test_rsa_and_ed25519_cosign_keys_verify_as_sigstore_does() -> None:
    payload = simplesigning_payload(REFERENCE, DIGEST)
    rsa_key = key("rsa2048")
    rsa_sig = rsa_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    ed = PrivateKey.generate("ed25519").crypto
    ed_sig = ed.sign(payload)  # type: ignore[call-arg]
    for private, signature in ((rsa_key, rsa_sig), (ed, ed_sig)):
        artifact = build_signature_manifest([CosignSignature(payload, base64.b64encode(signature).decode())])
        [result] = verify_signatures(artifact.manifest, artifact.blobs, pem(private), digest=DIGEST)
        assert result.verified, result.reason


def test_unusable_manifests_and_keys_raise() -> None:
    with pytest.raises(CosignManifestError, match="not a PEM public key"):
        load_public_key(b"nope")
    artifact = build_signature_manifest([sign_image(REFERENCE, DIGEST, signer())])
    with pytest.raises(CosignManifestError, match="layers must be a list"):
        verify_signatures(
            json.dumps({**json.loads(artifact.manifest), "layers": {}}).encode(),
            {},
            pem(key("ec256")),
            digest=DIGEST,
        )
    with pytest.raises(CosignManifestError, match="limit"):
        verify_signatures(b" " * (4 * 1024 * 1024 + 1), {}, pem(key("ec256")), digest=DIGEST)


# --- signing -------------------------------------------------------------------------------------------


@dataclass
class KmsLikeSigner:
    private: ec.EllipticCurvePrivateKey
    hash_twice: bool = False

    @property
    def public_key(self) -> PublicKey:
        return PublicKey.from_crypto(self.private.public_key())

    def sign(self, message: bytes) -> tuple[str, bytes]:  # pragma: no cover
        raise AssertionError("formats sign digests")

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        if self.hash_twice:
            return self.private.sign(digest, ec.ECDSA(algorithm))
        return self.private.sign(digest, ec.ECDSA(Prehashed(algorithm)))


def test_a_kms_like_signer_signs_and_a_double_hashing_one_is_caught() -> None:
    signature = sign_image(REFERENCE, DIGEST, KmsLikeSigner(key("ec256")))  # type: ignore[arg-type]
    artifact = build_signature_manifest([signature])
    assert independently_verified(artifact.manifest, artifact.blobs, pem(key("ec256")), DIGEST) == [True]
    with pytest.raises(CosignSigningError, match="does not verify"):
        sign_image(REFERENCE, DIGEST, KmsLikeSigner(key("ec256"), hash_twice=True))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reference", "digest", "message"),
    [
        ("registry.example.com/team/app:1.0", DIGEST, "must be a repository name"),
        ("alpine:3.19", DIGEST, "names a tag"),
        ("registry.example.com/team/app@" + DIGEST, DIGEST, "must be a repository name"),
        ("", DIGEST, "must be a repository name"),
        (REFERENCE, "sha256:ABC", "is not a sha256:<hex>"),
        (REFERENCE, DIGEST[7:], "is not a sha256:<hex>"),
    ],
)
def test_bad_references_and_digests(reference: str, digest: str, message: str) -> None:
    with pytest.raises(CosignSigningError, match=message):
        sign_image(reference, digest, signer())


def test_only_ecdsa_keys_sign_cosign_signatures() -> None:
    with pytest.raises(CosignSigningError, match="need an ECDSA key"):
        sign_image(REFERENCE, DIGEST, PrivateKey.generate("ed25519"))
    with pytest.raises(CosignSigningError, match="need an ECDSA key"):
        sign_image(REFERENCE, DIGEST, signer("rsa2048"))


def test_registry_ports_are_part_of_the_repository_and_the_tag_schema() -> None:
    payload = simplesigning_payload("localhost:5000/app", DIGEST)
    assert json.loads(payload)["critical"]["identity"]["docker-reference"] == "localhost:5000/app"
    assert signature_tag(DIGEST) == f"sha256-{DIGEST[7:]}.sig"
    with pytest.raises(CosignManifestError):
        signature_tag("nope")
    assert SIMPLESIGNING_MEDIA_TYPE == "application/vnd.dev.cosign.simplesigning.v1+json"
