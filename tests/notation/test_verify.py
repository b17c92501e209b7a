"""The five steps under each level, with envelopes made for one failure at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509

from notar.notation import (
    Descriptor,
    NoApplicablePolicyError,
    SignatureBlob,
    SignatureResult,
    Status,
    Step,
    StoreRef,
    TrustStore,
    parse_trust_policy,
    verify_artifact,
    verify_signature,
)
from notar.notation.policy import TrustPolicyStatement
from tests.notation import factory as f

JWS = "application/jose+json"
COSE = "application/cose"
LEAF, ROOT = f.chain()
TSA_ROOT = f.cert(f.ca_spec("tsa-root"), f.key("rsa2048-b"))
TSA = f.cert(f.tsa_spec(), f.key("ec384-b"), (TSA_ROOT, f.key("rsa2048-b")))


def statement(
    level: str = "strict",
    stores: Sequence[str] = ("ca:acme",),
    identities: Sequence[str] = ("*",),
    **verification: Any,
) -> TrustPolicyStatement:
    raw = {
        "name": "acme",
        "registryScopes": ["*"],
        "signatureVerification": {"level": level, **verification},
        "trustStores": list(stores),
        "trustedIdentities": list(identities),
    }
    return parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [raw]})).statements[0]


STORE = TrustStore.of({"ca:acme": [ROOT], "signingAuthority:acme-sa": [ROOT], "tsa:tsa": [TSA_ROOT]})


def run(
    blob: bytes,
    st: TrustPolicyStatement | None = None,
    *,
    media_type: str = JWS,
    store: TrustStore = STORE,
    now: datetime = f.NOW,
    subject: Descriptor = f.SUBJECT,
    **kw: Any,
) -> SignatureResult:
    return verify_signature(
        SignatureBlob(media_type, blob),
        subject=subject,
        statement=st or statement(),
        trust_store=store,
        now=now,
        **kw,
    )


def status(result: SignatureResult) -> list[str]:
    return [s.status.value for s in result.steps]


def good(**kw: Any) -> bytes:
    return f.jws(f.key(), [LEAF, ROOT], **kw)


def test_a_good_signature_passes_every_step() -> None:
    result = run(good())
    assert result.verified and status(result) == ["passed"] * 5
    assert run(f.cose(f.key(), [LEAF, ROOT]), media_type=COSE).verified


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        (Descriptor(f.SUBJECT.media_type, "sha256:" + "2" * 64, f.SUBJECT.size), "digest"),
        (Descriptor(f.SUBJECT.media_type, f.SUBJECT.digest, f.SUBJECT.size + 1), "size"),
        (
            Descriptor("application/vnd.oci.image.index.v1+json", f.SUBJECT.digest, f.SUBJECT.size),
            "media type",
        ),
    ],
)
def test_the_payload_must_name_the_subject(subject: Descriptor, field: str) -> None:
    result = run(good(), subject=subject)
    assert result.failure is not None and result.failure.step is Step.INTEGRITY
    assert f"the payload names {field}" in result.failure.reason
    assert status(result) == ["failed", "skipped", "skipped", "skipped", "skipped"]
    assert result.steps[1].reason == "not evaluated: integrity failed"


def test_integrity_is_enforced_at_every_level_but_skip() -> None:
    other = Descriptor(f.SUBJECT.media_type, "sha256:" + "2" * 64, f.SUBJECT.size)
    for level in ("strict", "permissive", "audit"):
        assert run(good(), statement(level), subject=other).failure is not None
    skip = statement("skip", stores=(), identities=())
    assert run(b"garbage", skip).verified
    assert status(run(b"garbage", skip)) == ["skipped"] * 5


def test_authenticity_untrusted_chain() -> None:
    other_root = f.cert(f.ca_spec("other"), f.key("rsa3072-b"))
    store = TrustStore.of({"ca:acme": [other_root]})
    result = run(good(), store=store)
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY
    assert status(result) == ["passed", "failed", "skipped", "skipped", "skipped"]
    # audit logs it and the signature is accepted; permissive enforces it
    assert run(good(), statement("audit"), store=store).verified
    assert status(run(good(), statement("audit"), store=store))[1] == "logged"
    assert not run(good(), statement("permissive"), store=store).verified


def test_authenticity_trusting_the_leaf_itself() -> None:
    assert run(good(), store=TrustStore.of({"ca:acme": [LEAF]})).verified


def test_authenticity_certificate_rules() -> None:
    leaf = f.cert(f.CertSpec(usage_critical=False), f.key(), (ROOT, f.key("rsa3072")))
    result = run(f.jws(f.key(), [leaf, ROOT]))
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY
    assert "keyUsage extension is not marked critical" in result.failure.reason


def test_authenticity_trusted_identity() -> None:
    assert run(good(), statement(identities=["x509.subject: C=US, ST=WA, O=Notary, CN=leaf"])).verified
    result = run(good(), statement(identities=["x509.subject: C=US, ST=WA, O=Acme"]))
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY
    assert "'CN=leaf,O=Notary,L=Seattle,ST=WA,C=US' matches no trusted identity" in result.failure.reason


def test_authenticity_store_errors() -> None:
    result = run(good(), statement(stores=["ca:missing"]))
    assert result.failure is not None and "trust store ca:missing does not exist" in result.failure.reason
    broken = TrustStore({}, {StoreRef.parse("ca:acme"): "bad.pem: x"})
    result = run(good(), store=broken)
    assert result.failure is not None and "trust store ca:acme: bad.pem: x" in result.failure.reason


def _signing_authority(at: str = "2026-12-01T00:00:00Z") -> bytes:
    protected = f.x509_protected(
        **{
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.signingTime": None,
            "io.cncf.notary.authenticSigningTime": at,
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
        }
    )
    return good(protected=protected)


def test_signing_authority_scheme_uses_signing_authority_stores() -> None:
    result = run(_signing_authority(), statement(stores=["signingAuthority:acme-sa"]))
    assert result.verified, result.steps
    # a ca store does not anchor a signingAuthority signature, and vice versa
    result = run(_signing_authority(), statement(stores=["ca:acme"]))
    assert result.failure is not None and result.failure.step is Step.AUTHENTICITY
    assert (
        "has no signingAuthority trust store for signing scheme notary.x509.signingAuthority"
        in result.failure.reason
    )
    result = run(good(), statement(stores=["signingAuthority:acme-sa"]))
    assert (
        result.failure is not None
        and "has no ca trust store for signing scheme notary.x509" in result.failure.reason
    )


def test_signing_authority_time_must_be_within_the_chain_validity() -> None:
    result = run(_signing_authority("2019-06-01T00:00:00Z"), statement(stores=["signingAuthority:acme-sa"]))
    assert result.failure is not None and result.failure.step is Step.AUTHENTIC_TIMESTAMP
    assert "at the authentic signing time 2019-06-01T00:00:00+00:00" in result.failure.reason


def _with_expiry(expiry: str) -> bytes:
    protected = f.x509_protected(
        **{"io.cncf.notary.expiry": expiry, "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]}
    )
    return good(protected=protected)


def test_expiry_step() -> None:
    assert run(_with_expiry("2026-12-31T00:00:00Z")).verified
    assert "valid until 2026-12-31" in run(_with_expiry("2026-12-31T00:00:00Z")).step(Step.EXPIRY).reason
    expired = run(_with_expiry("2026-12-02T00:00:00Z"))
    assert expired.failure is not None and expired.failure.step is Step.EXPIRY
    assert run(_with_expiry("2026-12-02T00:00:00Z"), statement("strict", override={"expiry": "log"})).verified


def _short_lived() -> list[x509.Certificate]:
    spec = f.CertSpec(not_before=datetime(2025, 1, 1, tzinfo=UTC), not_after=datetime(2026, 1, 1, tzinfo=UTC))
    return [f.cert(spec, f.key(), (ROOT, f.key("rsa3072"))), ROOT]


def test_authentic_timestamp_without_token_needs_a_chain_valid_now() -> None:
    blob = f.jws(f.key(), _short_lived())
    result = run(blob)
    assert result.failure is not None and result.failure.step is Step.AUTHENTIC_TIMESTAMP
    assert (
        "no timestamp, and not valid now" in result.failure.reason
        and "expired at 2026-01-01" in result.failure.reason
    )
    permissive = run(blob, statement("permissive"))
    assert permissive.verified and permissive.step(Step.AUTHENTIC_TIMESTAMP).status is Status.LOGGED
    assert run(blob, now=datetime(2025, 6, 1, tzinfo=UTC)).verified


def _stamped(certs: list[x509.Certificate], gen_time: datetime, **kw: Any) -> bytes:
    return f.jws(
        f.key(), certs, timestamp=lambda sig: f.tsa_token(sig, TSA, f.key("ec384-b"), gen_time=gen_time, **kw)
    )


def test_authentic_timestamp_with_a_token_outlives_the_signing_certificate() -> None:
    blob = _stamped(_short_lived(), datetime(2025, 6, 1, tzinfo=UTC))
    result = run(blob, statement(stores=["ca:acme", "tsa:tsa"]))
    assert result.verified, result.steps
    assert result.timestamp is not None and result.timestamp.gen_time == datetime(2025, 6, 1, tzinfo=UTC)
    assert (
        "timestamped at 2025-06-01T00:00:00+00:00 by 'CN=tsa" in result.step(Step.AUTHENTIC_TIMESTAMP).reason
    )


def test_authentic_timestamp_token_outside_the_chain_validity() -> None:
    blob = _stamped(_short_lived(), datetime(2026, 6, 1, tzinfo=UTC))
    result = run(blob, statement(stores=["ca:acme", "tsa:tsa"]))
    assert result.failure is not None and result.failure.step is Step.AUTHENTIC_TIMESTAMP
    assert "at the timestamp 2026-06-01" in result.failure.reason


def test_authentic_timestamp_token_needs_a_tsa_store() -> None:
    blob = _stamped([LEAF, ROOT], datetime(2026, 6, 1, tzinfo=UTC))
    result = run(blob)
    assert result.failure is not None and result.failure.step is Step.AUTHENTIC_TIMESTAMP
    assert "timestamped but statement 'acme' names no tsa trust store" in result.failure.reason
    untrusted = TrustStore.of({"ca:acme": [ROOT], "tsa:tsa": [ROOT]})
    result = run(blob, statement(stores=["ca:acme", "tsa:tsa"]), store=untrusted)
    assert (
        result.failure is not None and "does not chain to a trusted TSA certificate" in result.failure.reason
    )


def test_authentic_timestamp_token_over_another_signature() -> None:
    blob = _stamped([LEAF, ROOT], datetime(2026, 6, 1, tzinfo=UTC), imprint_of=b"another signature")
    result = run(blob, statement(stores=["ca:acme", "tsa:tsa"]))
    assert (
        result.failure is not None and "messageImprint does not match the signature" in result.failure.reason
    )


def test_verify_timestamp_after_cert_expiry() -> None:
    # while the chain is valid the token is not even looked at ...
    blob = _stamped([LEAF, ROOT], datetime(2026, 6, 1, tzinfo=UTC), imprint_of=b"junk")
    st = statement(stores=["ca:acme", "tsa:tsa"], verifyTimestamp="afterCertExpiry")
    result = run(blob, st)
    assert result.verified and "afterCertExpiry" in result.step(Step.AUTHENTIC_TIMESTAMP).reason
    # ... once it expired, the token decides
    assert run(_stamped(_short_lived(), datetime(2025, 6, 1, tzinfo=UTC)), st).verified
    assert not run(
        _stamped(_short_lived(), datetime(2025, 6, 1, tzinfo=UTC), imprint_of=b"junk"), st
    ).verified


def _revocable() -> list[x509.Certificate]:
    spec = f.CertSpec(ocsp="http://ocsp.example", crl="http://crl.example/ca.crl")
    return [f.cert(spec, f.key(), (ROOT, f.key("rsa3072"))), ROOT]


def test_revocation_without_locations_passes() -> None:
    assert "not revocable" in run(good()).step(Step.REVOCATION).reason


def test_revocation_with_locations_needs_a_checker() -> None:
    blob = f.jws(f.key(), _revocable())
    result = run(blob)
    assert result.failure is not None and result.failure.step is Step.REVOCATION
    assert "revocation status unknown" in result.failure.reason
    assert run(blob, statement("permissive")).step(Step.REVOCATION).status is Status.LOGGED
    skipped = run(blob, statement("strict", override={"revocation": "skip"}))
    assert skipped.verified and skipped.step(Step.REVOCATION).status is Status.SKIPPED

    calls: list[tuple[int, datetime]] = []

    def not_revoked(chain: Sequence[x509.Certificate], at: datetime) -> str | None:
        calls.append((len(chain), at))
        return None

    assert run(blob, revocation=not_revoked).verified and calls == [(2, f.NOW)]
    revoked = run(blob, revocation=lambda chain, at: "certificate 0 is revoked (keyCompromise)")
    assert (
        revoked.failure is not None and revoked.failure.reason == "certificate 0 is revoked (keyCompromise)"
    )


def test_logged_failures_keep_evaluating_later_steps() -> None:
    blob = f.jws(
        f.key(),
        _short_lived(),
        protected=f.x509_protected(
            **{
                "io.cncf.notary.expiry": "2026-12-01T12:00:00Z",
                "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"],
            }
        ),
    )
    result = run(blob, statement("permissive"))
    assert result.verified
    assert status(result) == ["passed", "passed", "logged", "logged", "passed"]


def test_verify_artifact_edge_cases() -> None:
    policy = parse_trust_policy(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "app",
                        "registryScopes": ["registry.example/app"],
                        "signatureVerification": {"level": "strict"},
                        "trustStores": ["ca:acme"],
                        "trustedIdentities": ["*"],
                    }
                ],
            }
        )
    )
    common: dict[str, Any] = {"subject": f.SUBJECT, "policy": policy, "trust_store": STORE, "now": f.NOW}
    none = verify_artifact([], repository="registry.example/app", **common)
    assert not none.verified and none.reason == f"no signature is associated with {f.SUBJECT.digest}"
    with pytest.raises(NoApplicablePolicyError):
        verify_artifact([], repository="registry.example/other", **common)
    bad = SignatureBlob(JWS, b"{}", "bad")
    many = verify_artifact(
        [bad] * 3 + [SignatureBlob(JWS, good(), "good")],
        repository="registry.example/app",
        max_signatures=3,
        **common,
    )
    assert not many.verified and len(many.results) == 3 and "more than 3 signatures" in many.reason
    ok = verify_artifact(
        [bad, SignatureBlob(JWS, good(), "good")], repository="registry.example/app", **common
    )
    assert ok.verified and ok.accepted is not None and ok.accepted.label == "good"
    assert ok.reason == "signature good satisfies statement 'app' (strict)"


def test_the_clock_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(good(), now=datetime(2026, 12, 2))
    assert run(good(), now=f.NOW.astimezone(timezone(timedelta(hours=-8)))).verified
