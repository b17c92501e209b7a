"""Every Notation vector: the valid ones verify, the invalid ones are refused at the right step.

Vectors (tests/vectors/notation/README.md) were made by the real notation; the clock is fixed at
2026-12-02 (after every signing time; e2e.crt is valid to 2122, the alpine certificate to 2123, the
NotationTestRoot chain to 2122; the e2e "expired" signature expired in 2023, ca_expired in 2022).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from notar.notation import (
    Descriptor,
    Level,
    SignatureBlob,
    SignatureResult,
    SigningScheme,
    Status,
    Step,
    TrustStore,
    Verdict,
    parse_envelope,
    parse_trust_policy,
    verify_artifact,
    verify_signature,
)
from notar.notation.loader import load_trust_policy, load_trust_store
from notar.notation.manifest import ManifestForm, chain_thumbprints
from tests.notation.conftest import E2E, GO_MOCK, GO_TESTDATA, GO_TRUSTSTORE_CONFIG, LAYOUTS
from tests.notation.factory import NOW
from tests.notation.layout import read_signatures

E2E_REPOSITORY = "localhost:5000/e2e"
JWS = "application/jose+json"
COSE = "application/cose"
MOCK_SUBJECT = Descriptor(
    "application/vnd.docker.distribution.manifest.v2+json",
    "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
    528,
)


def policy(level: str, stores: list[str], identities: list[str] | None = None) -> bytes:
    statement = {
        "name": "test",
        "registryScopes": ["*"],
        "signatureVerification": {"level": level},
        "trustStores": stores,
        "trustedIdentities": identities or ["*"],
    }
    return json.dumps({"version": "1.0", "trustPolicies": [statement]}).encode()


def statuses(result: SignatureResult) -> dict[Step, Status]:
    return {s.step: s.status for s in result.steps}


ALL_PASSED = dict.fromkeys(Step, Status.PASSED)


# --- notation e2e layouts (JWS, old manifest form, referrers tag schema) ---------------------------


def test_e2e_valid_signature_verifies_with_the_e2e_policy_and_store(e2e_config: Path) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-valid-signature")
    assert sig.manifest is not None and sig.manifest.form is ManifestForm.CONFIG_MEDIA_TYPE
    assert sig.subject.digest.startswith("sha256:b8479de3")
    verdict = verify_artifact(
        [sig.as_blob()],
        subject=sig.subject,
        repository=E2E_REPOSITORY,
        policy=load_trust_policy(e2e_config),
        trust_store=load_trust_store(e2e_config),
        now=NOW,
    )
    assert verdict.verified, verdict.reason
    [result] = verdict.results
    assert statuses(result) == ALL_PASSED
    assert result.envelope is not None
    assert result.envelope.attributes.signing_scheme is SigningScheme.X509
    assert "ca:e2e" in result.step(Step.AUTHENTICITY).reason
    # the thumbprint annotation is the SHA-256 of the x5c chain
    assert sig.manifest.thumbprints == chain_thumbprints(result.envelope.certificate_chain)


def test_e2e_expired_signature_fails_expiry_under_strict(e2e_config: Path) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-expired-signature")
    verdict = verify_artifact(
        [sig.as_blob()],
        subject=sig.subject,
        repository=E2E_REPOSITORY,
        policy=load_trust_policy(e2e_config),
        trust_store=load_trust_store(e2e_config),
        now=NOW,
    )
    assert not verdict.verified
    [result] = verdict.results
    assert result.failure is not None and result.failure.step is Step.EXPIRY
    assert "expired at 2023-06-27T13:21:21+08:00" in result.failure.reason
    assert statuses(result) == {
        Step.INTEGRITY: Status.PASSED,
        Step.AUTHENTICITY: Status.PASSED,
        Step.EXPIRY: Status.FAILED,
        Step.AUTHENTIC_TIMESTAMP: Status.SKIPPED,
        Step.REVOCATION: Status.SKIPPED,
    }


def test_e2e_expired_signature_is_only_logged_under_permissive(e2e_config: Path) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-expired-signature")
    verdict = verify_artifact(
        [sig.as_blob()],
        subject=sig.subject,
        repository=E2E_REPOSITORY,
        policy=parse_trust_policy(policy("permissive", ["ca:e2e"])),
        trust_store=load_trust_store(e2e_config),
        now=NOW,
    )
    assert verdict.verified
    assert statuses(verdict.results[0])[Step.EXPIRY] is Status.LOGGED


def test_e2e_expired_signature_was_valid_before_its_expiry(e2e_config: Path) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-expired-signature")
    envelope = parse_envelope(sig.layer.media_type, sig.blob)
    assert envelope.attributes.expiry is not None and envelope.attributes.signing_time is not None
    result = verify_signature(
        sig.as_blob(),
        subject=sig.subject,
        statement=load_trust_policy(e2e_config).statement_for(E2E_REPOSITORY),
        trust_store=load_trust_store(e2e_config),
        now=envelope.attributes.signing_time,
    )
    assert result.verified


def test_e2e_invalid_signature_is_refused_as_a_manifest_and_at_integrity(e2e_config: Path) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-invalid-signature")
    # the manifest helper refuses a layer that is not an envelope ...
    assert sig.manifest is None and sig.error is not None
    assert "application/vnd.oci.image.layer.v1.tar" in str(sig.error)
    # ... and a caller that passes the layer on anyway gets an integrity failure, as notation does
    verdict = verify_artifact(
        [sig.as_blob()],
        subject=sig.subject,
        repository=E2E_REPOSITORY,
        policy=load_trust_policy(e2e_config),
        trust_store=load_trust_store(e2e_config),
        now=NOW,
    )
    assert not verdict.verified
    failure = verdict.results[0].failure
    assert failure is not None and failure.step is Step.INTEGRITY
    assert "unsupported signature envelope media type" in failure.reason


def test_e2e_valid_signature_fails_authenticity_with_another_certificate(
    e2e_config: Path, tmp_path: Path
) -> None:
    [sig] = read_signatures(LAYOUTS / "e2e-valid-signature")
    other = x509.load_pem_x509_certificates((E2E / "config" / "localkeys" / "new_e2e.crt").read_bytes())
    result = verify_signature(
        sig.as_blob(),
        subject=sig.subject,
        statement=parse_trust_policy(policy("strict", ["ca:e2e"])).statements[0],
        trust_store=TrustStore.of({"ca:e2e": other}),
        now=NOW,
    )
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY
    assert "no certificate of the signature's chain is in trust store(s) ca:e2e" in result.failure.reason


def test_e2e_expired_certificate_is_an_expired_cert() -> None:
    [expired] = x509.load_pem_x509_certificates(
        (E2E / "config" / "localkeys" / "expired_e2e.crt").read_bytes()
    )
    assert expired.not_valid_after_utc < NOW


# --- notation-go envelopes (JWS and COSE over the alpine manifest; CA-issued chain) -----------------


def _alpine_subject() -> Descriptor:
    index = json.loads((GO_TESTDATA / "oci-layout" / "index.json").read_text())
    entry = index["manifests"][0]
    return Descriptor(entry["mediaType"], entry["digest"], entry["size"])


def _leaf_store(envelope_path: Path, media_type: str) -> TrustStore:
    envelope = parse_envelope(media_type, envelope_path.read_bytes())
    return TrustStore.of({"ca:alpine": [envelope.certificate_chain[-1]]})


@pytest.mark.parametrize(
    ("file_name", "media_type"), [("jws_signature.sig", JWS), ("cose_signature.sig", COSE)]
)
def test_notation_go_envelopes_verify(file_name: str, media_type: str) -> None:
    subject = _alpine_subject()
    assert subject.digest.startswith("sha256:19dbd2e4") and subject.size == 481
    path = GO_TESTDATA / file_name
    verdict = verify_artifact(
        [SignatureBlob(media_type, path.read_bytes(), file_name)],
        subject=subject,
        repository="registry.example/library/alpine",
        policy=parse_trust_policy(
            policy("strict", ["ca:alpine"], ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine"])
        ),
        trust_store=_leaf_store(path, media_type),
        now=NOW,
    )
    assert verdict.verified, verdict.reason
    assert statuses(verdict.results[0]) == ALL_PASSED
    envelope = verdict.results[0].envelope
    assert envelope is not None and envelope.algorithm == "PS256"
    assert envelope.certificate_chain[0].not_valid_after_utc.year == 2123


@pytest.mark.parametrize(
    ("file_name", "media_type"), [("jws_signature.sig", JWS), ("cose_signature.sig", COSE)]
)
def test_notation_go_envelopes_refuse_another_subject(file_name: str, media_type: str) -> None:
    path = GO_TESTDATA / file_name
    wrong = Descriptor(_alpine_subject().media_type, "sha256:" + "0" * 64, 481)
    result = verify_signature(
        SignatureBlob(media_type, path.read_bytes()),
        subject=wrong,
        statement=parse_trust_policy(policy("strict", ["ca:alpine"])).statements[0],
        trust_store=_leaf_store(path, media_type),
        now=NOW,
    )
    assert result.failure is not None and result.failure.step is Step.INTEGRITY
    assert "digest" in result.failure.reason


@pytest.mark.parametrize(
    ("file_name", "media_type"), [("jws_signature.sig", JWS), ("cose_signature.sig", COSE)]
)
def test_notation_go_envelopes_fail_authenticity_against_the_valid_trust_store(
    file_name: str, media_type: str
) -> None:
    # The alpine signer is not in notation-go's "valid-trust-store" (its CN=alpine cert is another one).
    result = verify_signature(
        SignatureBlob(media_type, (GO_TESTDATA / file_name).read_bytes()),
        subject=_alpine_subject(),
        statement=parse_trust_policy(policy("strict", ["ca:valid-trust-store"])).statements[0],
        trust_store=load_trust_store(GO_TRUSTSTORE_CONFIG),
        now=NOW,
    )
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY


def _mock(name: str) -> SignatureBlob:
    return SignatureBlob(JWS, (GO_MOCK / name).read_bytes(), name)


def _mock_verdict(names: list[str], level: str = "strict", identities: list[str] | None = None) -> Verdict:
    return verify_artifact(
        [_mock(n) for n in names],
        subject=MOCK_SUBJECT,
        repository="registry.example/mock",
        policy=parse_trust_policy(policy(level, ["ca:valid-trust-store"], identities)),
        trust_store=load_trust_store(GO_TRUSTSTORE_CONFIG),
        now=NOW,
    )


def test_ca_valid_signature_verifies_against_the_notation_go_trust_store() -> None:
    verdict = _mock_verdict(
        ["ca_valid_sig_env.json"],
        identities=["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=Notation Test Root"],
    )
    assert verdict.verified, verdict.reason
    result = verdict.results[0]
    assert statuses(result) == ALL_PASSED
    assert result.envelope is not None and result.envelope.algorithm == "PS384"
    assert len(result.envelope.certificate_chain) == 2
    assert "NotationTestRoot" not in result.step(Step.AUTHENTICITY).reason  # names the subject, not the file
    assert "ca:valid-trust-store" in result.step(Step.AUTHENTICITY).reason


def test_ca_valid_signature_fails_authenticity_for_another_identity() -> None:
    verdict = _mock_verdict(
        ["ca_valid_sig_env.json"], identities=["x509.subject: C=US, ST=WA, O=Someone Else"]
    )
    failure = verdict.results[0].failure
    assert failure is not None and failure.step is Step.AUTHENTICITY
    assert "matches no trusted identity" in failure.reason


def test_ca_invalid_signature_fails_integrity() -> None:
    verdict = _mock_verdict(["ca_invalid_sig_env.json"])
    failure = verdict.results[0].failure
    assert failure is not None and failure.step is Step.INTEGRITY
    # its payload is padded base64url, so the signed bytes are not notation's: refused before any crypto
    assert "payload is not unpadded base64url" in failure.reason


def test_ca_invalid_signature_fails_integrity_even_under_audit() -> None:
    verdict = _mock_verdict(["ca_invalid_sig_env.json"], level="audit")
    assert not verdict.verified
    assert verdict.results[0].step(Step.INTEGRITY).status is Status.FAILED


def test_ca_expired_signature_fails_expiry() -> None:
    verdict = _mock_verdict(["ca_expired_sig_env.json"])
    failure = verdict.results[0].failure
    assert failure is not None and failure.step is Step.EXPIRY
    assert "2022-07-29T23:59:00+00:00" in failure.reason


def test_one_valid_signature_among_bad_ones_is_enough() -> None:
    verdict = _mock_verdict(["ca_invalid_sig_env.json", "ca_expired_sig_env.json", "ca_valid_sig_env.json"])
    assert verdict.verified
    assert [r.verified for r in verdict.results] == [False, False, True]
    assert verdict.accepted is not None and verdict.accepted.label == "ca_valid_sig_env.json"


def test_only_bad_signatures_give_a_refusal_naming_the_last_failure() -> None:
    verdict = _mock_verdict(["ca_invalid_sig_env.json", "ca_expired_sig_env.json"])
    assert not verdict.verified
    assert "none of 2 signature(s)" in verdict.reason and "expiry" in verdict.reason


def test_skip_level_verifies_nothing() -> None:
    statement = json.dumps(
        {
            "version": "1.0",
            "trustPolicies": [
                {"name": "skip", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}
            ],
        }
    ).encode()
    verdict = verify_artifact(
        [_mock("ca_invalid_sig_env.json")],
        subject=MOCK_SUBJECT,
        repository="registry.example/mock",
        policy=parse_trust_policy(statement),
        trust_store=TrustStore(),
        now=NOW,
    )
    assert verdict.verified and verdict.results == () and verdict.statement.level is Level.SKIP


def test_x5c_in_vectors_is_standard_base64_der_leaf_first() -> None:
    env = json.loads((GO_MOCK / "ca_valid_sig_env.json").read_text())
    parsed = parse_envelope(JWS, (GO_MOCK / "ca_valid_sig_env.json").read_bytes())
    assert [base64.b64decode(c) for c in env["header"]["x5c"]] == [
        c.public_bytes(Encoding.DER) for c in parsed.certificate_chain
    ]
