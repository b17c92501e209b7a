"""Notation signing (notar.notation.sign): what notation wrote for the same key, and round trips.

* With the vectors' own ``e2e.key`` + ``e2e.crt`` the envelope and manifest parse to what ``notation``
  wrote in ``e2e-valid-signature`` (timestamps and signature bytes aside; the manifest in the current
  form); the COSE layout is compared with notation-go's ``cose_signature.sig``.
* Every envelope made verifies with :func:`notar.notation.verify_artifact` (JWS and COSE, every RSA and
  EC key size Notation allows, self-signed and CA-issued chains).
* Bad inputs are one-line :class:`SigningError` s; a signer that signs with the wrong key, or hashes
  twice (moto's KMS ``DIGEST`` behaviour), is caught before anything is returned.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from notar import __version__
from notar.crypto import PrivateKey, PublicKey
from notar.notation import (
    Descriptor,
    SignatureBlob,
    Status,
    Step,
    TrustStore,
    parse_envelope,
    parse_signature_manifest,
    parse_trust_policy,
    verify_artifact,
)
from notar.notation.manifest import (
    ARTIFACT_TYPE,
    EMPTY_CONFIG,
    THUMBPRINT_ANNOTATION,
    ManifestForm,
    chain_thumbprints,
    check_blob,
)
from notar.notation.sign import (
    SIGNING_AGENT,
    SigningError,
    build_signature_artifact,
    sign_artifact,
    sign_envelope,
)
from tests.notation.conftest import E2E, GO_TESTDATA, LAYOUTS
from tests.notation.factory import NOW, SUBJECT, CertSpec, cert, chain, key, key_usage, name
from tests.notation.layout import read_signatures

JWS = "application/jose+json"
COSE = "application/cose"
LOCALKEYS = E2E / "config" / "localkeys"
E2E_SUBJECT = Descriptor(
    "application/vnd.oci.image.manifest.v1+json",
    "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
    517,
)
SIGNED_AT = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def e2e_signer() -> tuple[PrivateKey, list[x509.Certificate]]:
    private = serialization.load_pem_private_key((LOCALKEYS / "e2e.key").read_bytes(), None)
    certs = x509.load_pem_x509_certificates((LOCALKEYS / "e2e.crt").read_bytes())
    return PrivateKey(private), certs  # type: ignore[arg-type]


def b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def policy(stores: list[str], level: str = "strict") -> Any:
    statement = {
        "name": "signed-by-notar",
        "registryScopes": ["*"],
        "signatureVerification": {"level": level},
        "trustStores": stores,
        "trustedIdentities": ["*"],
    }
    return parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [statement]}))


def verify(
    media_type: str,
    data: bytes,
    store: dict[str, list[x509.Certificate]],
    *,
    subject: Descriptor = SUBJECT,
    now: datetime = NOW,
) -> Any:
    return verify_artifact(
        [SignatureBlob(media_type, data)],
        subject=subject,
        repository="registry.example.com/team/app",
        policy=policy(list(store)),
        trust_store=TrustStore.of(store),  # type: ignore[arg-type]
        now=now,
    )


# --- the same key as notation's e2e signature: same structure -------------------------------------


def test_jws_envelope_has_the_structure_notation_wrote_for_the_same_key() -> None:
    [theirs] = read_signatures(LAYOUTS / "e2e-valid-signature")
    private, certs = e2e_signer()
    ours = sign_envelope(E2E_SUBJECT, private, certs, signing_time=SIGNED_AT)
    assert ours.media_type == JWS == theirs.layer.media_type
    mine, real = json.loads(ours.data), json.loads(theirs.blob)
    assert list(mine) == list(real) == ["payload", "protected", "header", "signature"]
    my_header, real_header = b64url_json(mine["protected"]), b64url_json(real["protected"])
    assert list(my_header) == list(real_header)  # same keys, same (sorted) order
    for name_ in ("alg", "crit", "cty", "io.cncf.notary.signingScheme"):
        assert my_header[name_] == real_header[name_], name_
    assert my_header["io.cncf.notary.signingTime"] == "2026-12-01T09:30:15Z"
    assert b64url_json(mine["payload"]) == b64url_json(real["payload"])  # the same descriptor, signed
    assert list(mine["header"]) == list(real["header"]) == ["x5c", "io.cncf.notary.signingAgent"]
    assert mine["header"]["x5c"] == real["header"]["x5c"]  # the same certificate, same encoding
    assert mine["header"]["io.cncf.notary.signingAgent"] == SIGNING_AGENT == f"notar/{__version__}"
    assert len(base64.urlsafe_b64decode(mine["signature"] + "==")) == len(
        base64.urlsafe_b64decode(real["signature"] + "==")
    )
    # and the verifier reads both the same way
    a, b = parse_envelope(JWS, ours.data), parse_envelope(JWS, theirs.blob)
    assert (a.algorithm, a.content_type, a.attributes.critical, a.target_artifact) == (
        b.algorithm,
        b.content_type,
        b.attributes.critical,
        b.target_artifact,
    )
    assert a.certificate_chain == b.certificate_chain


def test_signature_manifest_is_notations_in_the_current_form() -> None:
    [theirs] = read_signatures(LAYOUTS / "e2e-valid-signature")
    real = json.loads(
        (LAYOUTS / "e2e-valid-signature" / "blobs" / "sha256" / theirs.manifest_digest[7:]).read_bytes()
    )
    private, certs = e2e_signer()
    artifact = sign_artifact(E2E_SUBJECT, private, certs, signing_time=SIGNED_AT)
    mine = json.loads(artifact.manifest)
    # the current form: artifactType + the empty config instead of config.mediaType
    assert mine.pop("artifactType") == ARTIFACT_TYPE
    assert mine.pop("config") == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert real.pop("config")["mediaType"] == ARTIFACT_TYPE
    assert list(mine) == list(real) == ["schemaVersion", "mediaType", "layers", "subject", "annotations"]
    assert mine["schemaVersion"] == real["schemaVersion"] and mine["mediaType"] == real["mediaType"]
    assert [set(layer) for layer in mine["layers"]] == [set(layer) for layer in real["layers"]]
    assert mine["layers"][0]["mediaType"] == real["layers"][0]["mediaType"] == JWS
    assert mine["subject"] == real["subject"]
    assert list(mine["annotations"]) == list(real["annotations"])
    # same certificate -> the very same thumbprint annotation text
    assert mine["annotations"][THUMBPRINT_ANNOTATION] == real["annotations"][THUMBPRINT_ANNOTATION]
    assert mine["annotations"]["org.opencontainers.image.created"] == "2026-12-01T09:30:15Z"
    # the descriptor is the referrers index entry notation wrote for its manifest
    index = json.loads((LAYOUTS / "e2e-valid-signature" / "index.json").read_text())
    tag = next(m for m in index["manifests"] if m["mediaType"].endswith("index.v1+json"))
    [entry] = json.loads(
        (LAYOUTS / "e2e-valid-signature" / "blobs" / "sha256" / tag["digest"][7:]).read_bytes()
    )["manifests"]
    mine_entry = artifact.descriptor.to_json()
    assert set(mine_entry) == set(entry)
    assert (
        mine_entry["artifactType"] == entry["artifactType"] and mine_entry["mediaType"] == entry["mediaType"]
    )
    assert mine_entry["annotations"][THUMBPRINT_ANNOTATION] == entry["annotations"][THUMBPRINT_ANNOTATION]


def test_cose_envelope_has_the_structure_notation_go_writes() -> None:
    theirs = cbor2.loads((GO_TESTDATA / "cose_signature.sig").read_bytes())
    private, certs = e2e_signer()
    ours = cbor2.loads(
        sign_envelope(E2E_SUBJECT, private, certs, signing_time=SIGNED_AT, media_type=COSE).data
    )
    assert ours.tag == theirs.tag == 18
    (p1, u1, pl1, _), (p2, u2, pl2, _) = ours.value, theirs.value
    mine_protected, real_protected = cbor2.loads(p1), cbor2.loads(p2)
    assert list(mine_protected) == list(real_protected)  # same labels in the same canonical order
    for label in (1, 2, 3, "io.cncf.notary.signingScheme"):
        assert mine_protected[label] == real_protected[label], label  # both PS256 (-37)
    assert mine_protected["io.cncf.notary.signingTime"] == datetime(2026, 12, 1, 9, 30, 15, tzinfo=UTC)
    assert list(u1) == list(u2) == [33, "io.cncf.notary.signingAgent"]
    assert isinstance(u1[33], list | tuple) and isinstance(u2[33], list | tuple)
    assert list(json.loads(pl1)["targetArtifact"]) == list(json.loads(pl2)["targetArtifact"])
    # the raw protected header encodes times as tag 1 with an integer, like notation-go
    assert b"\xc1\x1a" in p1 and b"\xc1\x1a" in p2


@pytest.mark.parametrize("media_type", [JWS, COSE])
def test_e2e_key_signatures_verify_with_e2e_crt_as_the_trust_anchor(media_type: str) -> None:
    private, certs = e2e_signer()
    artifact = sign_artifact(E2E_SUBJECT, private, certs, signing_time=SIGNED_AT, media_type=media_type)
    manifest = parse_signature_manifest(artifact.manifest)
    envelope = artifact.blobs[manifest.envelope.digest]
    verdict = verify(media_type, envelope, {"ca:e2e": certs}, subject=E2E_SUBJECT)
    assert verdict.verified, verdict.reason
    assert {s.step: s.status for s in verdict.results[0].steps} == dict.fromkeys(Step, Status.PASSED)


# --- round trips ------------------------------------------------------------------------------------


KINDS = ["rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ec521"]
ALGS = {
    "rsa2048": "PS256",
    "rsa3072": "PS384",
    "rsa4096": "PS512",
    "ec256": "ES256",
    "ec384": "ES384",
    "ec521": "ES512",
}


@pytest.mark.parametrize("media_type", [JWS, COSE])
@pytest.mark.parametrize("kind", KINDS)
def test_every_envelope_made_verifies(media_type: str, kind: str) -> None:
    certs = chain(kind)  # leaf for the key + a CN=root CA
    signer = PrivateKey(key(kind))  # type: ignore[arg-type]
    signed = sign_envelope(
        SUBJECT, signer, certs, signing_time=NOW - timedelta(hours=1), media_type=media_type
    )
    assert signed.envelope.algorithm == ALGS[kind] and signed.media_type == media_type
    assert signed.envelope.signing_agent == SIGNING_AGENT
    verdict = verify(media_type, signed.data, {"ca:root": [certs[-1]]})
    assert verdict.verified, verdict.reason
    assert {s.step: s.status for s in verdict.results[0].steps} == dict.fromkeys(Step, Status.PASSED)
    # a store holding another root does not accept it
    other = chain("ec256", root_key="ec384")[-1]
    refused = verify(media_type, signed.data, {"ca:other": [other]})
    assert not refused.verified and refused.results[0].failure.step is Step.AUTHENTICITY


@pytest.mark.parametrize("media_type", [JWS, COSE])
def test_expiry_is_critical_and_enforced(media_type: str) -> None:
    certs = chain("ec256")
    signer = PrivateKey(key("ec256"))  # type: ignore[arg-type]
    expiry = NOW + timedelta(days=1)
    signed = sign_envelope(
        SUBJECT, signer, certs, signing_time=NOW - timedelta(hours=1), media_type=media_type, expiry=expiry
    )
    attributes = signed.envelope.attributes
    assert attributes.expiry == expiry and "io.cncf.notary.expiry" in attributes.critical
    assert verify(media_type, signed.data, {"ca:root": [certs[-1]]}).verified
    late = verify(media_type, signed.data, {"ca:root": [certs[-1]]}, now=expiry + timedelta(seconds=1))
    assert not late.verified and late.results[0].failure.step is Step.EXPIRY


@pytest.mark.parametrize("media_type", [JWS, COSE])
def test_user_metadata_goes_into_the_payload_not_the_manifest_subject(media_type: str) -> None:
    certs = chain("ec256")
    signer = PrivateKey(key("ec256"))  # type: ignore[arg-type]
    artifact = sign_artifact(
        SUBJECT,
        signer,
        certs,
        signing_time=NOW,
        media_type=media_type,
        user_metadata={"buildId": "42", "commit": "abc<&>"},
    )
    manifest = parse_signature_manifest(artifact.manifest)
    assert manifest.subject is not None and manifest.subject.to_json() == SUBJECT.to_json()
    envelope = parse_envelope(media_type, artifact.blobs[manifest.envelope.digest])
    assert dict(envelope.target_artifact.annotations) == {"buildId": "42", "commit": "abc<&>"}
    assert verify(media_type, artifact.blobs[manifest.envelope.digest], {"ca:root": [certs[-1]]}).verified


def test_artifact_bytes_and_descriptors_are_consistent() -> None:
    certs = chain("ec256")
    signer = PrivateKey(key("ec256"))  # type: ignore[arg-type]
    manifest_bytes, descriptor, blobs = sign_artifact(
        SUBJECT, signer, certs, signing_time=NOW, media_type=COSE
    )
    check_blob(descriptor, manifest_bytes)
    parsed = parse_signature_manifest(manifest_bytes)
    assert parsed.form is ManifestForm.ARTIFACT_TYPE and parsed.envelope.media_type == COSE
    assert descriptor.artifact_type == ARTIFACT_TYPE and descriptor.annotations == parsed.annotations
    assert set(blobs) == {EMPTY_CONFIG.digest, parsed.envelope.digest} and blobs[EMPTY_CONFIG.digest] == b"{}"
    for digest, data in blobs.items():
        assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    check_blob(parsed.envelope, blobs[parsed.envelope.digest])
    assert parsed.thumbprints == chain_thumbprints(certs)
    raw = json.loads(manifest_bytes)
    assert list(raw) == [
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "subject",
        "annotations",
    ]


def test_the_manifest_must_be_for_the_subject_the_envelope_signs() -> None:
    certs = chain("ec256")
    signed = sign_envelope(SUBJECT, PrivateKey(key("ec256")), certs, signing_time=NOW)  # type: ignore[arg-type]
    other = Descriptor(SUBJECT.media_type, "sha256:" + "0" * 64, SUBJECT.size)
    with pytest.raises(SigningError, match="not sha256:0000"):
        build_signature_artifact(signed, other)


# --- the key-access seam: anything with public_key + sign_digest -----------------------------------


@dataclass
class KmsLikeSigner:
    """What an AWS KMS key looks like to a format: a public key, and DER signatures over digests."""

    private: ec.EllipticCurvePrivateKey
    hash_twice: bool = False  # moto 5.2.5 hashes the digest again under MessageType=DIGEST
    calls: int = 0

    @property
    def public_key(self) -> PublicKey:
        return PublicKey.from_crypto(self.private.public_key())

    def sign(self, message: bytes) -> tuple[str, bytes]:  # pragma: no cover - not used by the formats
        raise AssertionError("formats sign digests")

    def sign_digest(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        self.calls += 1
        if self.hash_twice:
            return self.private.sign(digest, ec.ECDSA(algorithm))
        return self.private.sign(digest, ec.ECDSA(Prehashed(algorithm)))


@pytest.mark.parametrize("media_type", [JWS, COSE])
def test_a_kms_like_signer_signs_through_the_digest_seam(media_type: str) -> None:
    certs = chain("ec384")
    signer = KmsLikeSigner(key("ec384"))  # type: ignore[arg-type]
    signed = sign_envelope(SUBJECT, signer, certs, signing_time=NOW, media_type=media_type)
    assert signer.calls == 1 and signed.envelope.algorithm == "ES384"
    assert verify(media_type, signed.data, {"ca:root": [certs[-1]]}).verified


def test_a_signer_that_hashes_twice_is_caught() -> None:
    signer = KmsLikeSigner(key("ec256"), hash_twice=True)  # type: ignore[arg-type]
    with pytest.raises(SigningError, match="does not verify"):
        sign_envelope(SUBJECT, signer, chain("ec256"), signing_time=NOW)


# --- refusals ----------------------------------------------------------------------------------------


def test_refusals_are_one_line_signing_errors() -> None:
    certs = chain("ec256")
    signer = PrivateKey(key("ec256"))  # type: ignore[arg-type]
    leaf_without_signature_usage = [
        cert(CertSpec(usage=key_usage(key_encipherment=True)), key("ec256"), (certs[1], key("rsa3072"))),
        certs[1],
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"chain": []}, "chain is empty"),
        ({"chain": chain("ec256-b")}, "is not for the signer's key"),
        ({"chain": leaf_without_signature_usage}, "keyUsage lacks digitalSignature"),
        ({"signing_time": datetime(2130, 1, 1, tzinfo=UTC)}, "not valid at the signing time"),
        ({"signing_time": datetime(2019, 1, 1, tzinfo=UTC)}, "not valid at the signing time"),
        ({"signing_time": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"expiry": NOW}, "is not after the signing time"),
        ({"expiry": NOW + timedelta(milliseconds=300)}, "is not after the signing time"),
        ({"media_type": "application/json"}, "unsupported envelope media type"),
        ({"subject": Descriptor(SUBJECT.media_type, "sha256:ABC", 1)}, "lowercase hex"),
        ({"subject": Descriptor(SUBJECT.media_type, SUBJECT.digest, -1)}, "size"),
        (
            {"subject": Descriptor(SUBJECT.media_type, SUBJECT.digest, 1, {"io.cncf.notary.x": "1"})},
            "is reserved",
        ),
    ]
    for override, message in cases:
        args: dict[str, Any] = {"subject": SUBJECT, "signer": signer, "chain": certs, "signing_time": NOW}
        args.update(override)
        with pytest.raises(SigningError, match=message) as e:
            sign_envelope(args.pop("subject"), args.pop("signer"), args.pop("chain"), **args)
        assert "\n" not in str(e.value)


def test_keys_notation_cannot_use_are_refused() -> None:
    ed = PrivateKey.generate("ed25519")
    ed_cert = cert(CertSpec(subject=name("ed"), hash=None), ed.crypto)  # type: ignore[arg-type]
    with pytest.raises(SigningError, match="not one Notation allows|Notary Project rules"):
        sign_envelope(SUBJECT, ed, [ed_cert], signing_time=NOW)


def test_an_old_chain_vector_cannot_be_signed_with_after_it_expired() -> None:
    private, _ = e2e_signer()
    expired = x509.load_pem_x509_certificates((LOCALKEYS / "expired_e2e.crt").read_bytes())
    with pytest.raises(SigningError):
        sign_envelope(E2E_SUBJECT, private, expired, signing_time=SIGNED_AT)
