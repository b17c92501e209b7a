"""Signing certificates (notar.notation.certgen): they meet the Notary Project rules and verify.

Each certificate made is checked with the verifier's rulebook and then used: an envelope signed with
its key verifies under a trust store holding the self-signed certificate, or the issuing CA's root.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from notar.crypto import PrivateKey
from notar.notation import (
    CertificateRequestError,
    SignatureBlob,
    TrustStore,
    parse_trust_policy,
    sign_envelope,
    signing_chain_problems,
    verify_artifact,
)
from notar.notation.certgen import (
    MAX_DAYS,
    issue_signing_certificate,
    parse_subject,
    self_signed_signing_certificate,
)
from tests.notation.factory import NOW, SUBJECT, CertSpec, ca_spec, cert, key, later

SUBJECT_TEXT = "C=US,ST=WA,L=Seattle,O=Acme,CN=alice"


def verified_with(certs: tuple[x509.Certificate, ...], signer: Any, anchor: x509.Certificate) -> bool:
    """Sign with *signer* and *certs*, verify with *anchor* in the ``ca`` store and an identity on C/ST/O."""
    envelope = sign_envelope(SUBJECT, signer, certs, signing_time=NOW + timedelta(minutes=1))
    statement = {
        "name": "acme",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"],
    }
    verdict = verify_artifact(
        [SignatureBlob(envelope.media_type, envelope.data)],
        subject=SUBJECT,
        repository="registry.example.com/acme/app",
        policy=parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [statement]})),
        trust_store=TrustStore.of({"ca:acme": [anchor]}),
        now=NOW + timedelta(minutes=2),
    )
    return bool(verdict.verified)


def extension(cert_: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension[Any]:
    return cert_.extensions.get_extension_for_class(cls)


# --- subjects ----------------------------------------------------------------------------------------


def test_subject_keeps_the_order_written_and_the_policy_syntax() -> None:
    subject = parse_subject(r"C=US, ST=WA, O=Acme\, Inc., OU=Release, CN=alice, 2.5.4.5=42")
    assert [(a.oid, a.value) for a in subject] == [
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        (NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Release"),
        (NameOID.COMMON_NAME, "alice"),
        (NameOID.SERIAL_NUMBER, "42"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty distinguished name"),
        ("CN=a,CN=b", "appears more than once"),
        ("CN=a+O=b", "multi-valued"),
        ("EMAIL=a@b", "unknown attribute EMAIL"),
        ("C=USA", "C='USA'"),
        ("CN=", "CN is empty"),
        ("nonsense", "is not TYPE=value"),
    ],
)
def test_bad_subjects_are_named(text: str, message: str) -> None:
    with pytest.raises(CertificateRequestError, match=message):
        parse_subject(text)


# --- self-signed -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "hash_name"),
    [
        ("ec256", "sha256"),
        ("ec384", "sha384"),
        ("ec521", "sha512"),
        ("rsa2048", "sha256"),
        ("rsa3072", "sha256"),
    ],
)
def test_self_signed_certificate_meets_the_rules_and_verifies(kind: str, hash_name: str) -> None:
    private = key(kind)
    [leaf] = self_signed_signing_certificate(private, subject=parse_subject(SUBJECT_TEXT), now=NOW, days=90)
    assert signing_chain_problems([leaf]) == []
    assert (
        leaf.subject == leaf.issuer
        and leaf.subject.rfc4514_string() == "CN=alice,O=Acme,L=Seattle,ST=WA,C=US"
    )
    assert leaf.not_valid_before_utc == NOW and leaf.not_valid_after_utc == NOW + timedelta(days=90)
    assert leaf.signature_hash_algorithm is not None and leaf.signature_hash_algorithm.name == hash_name
    usage = extension(leaf, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not any(
        getattr(usage.value, f)
        for f in (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
        )
    )
    assert list(extension(leaf, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CODE_SIGNING]
    basic = extension(leaf, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    assert extension(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        private.public_key()
    )
    assert 0 < leaf.serial_number < 1 << 160
    assert verified_with((leaf,), PrivateKey(private), leaf)  # type: ignore[arg-type]


def test_times_are_whole_seconds_in_utc() -> None:
    odd = datetime(2026, 12, 2, 13, 0, 0, 999999, tzinfo=UTC).astimezone()
    [leaf] = self_signed_signing_certificate(key("ec256"), subject=parse_subject("CN=x"), now=odd, days=1)
    assert leaf.not_valid_before_utc == datetime(2026, 12, 2, 13, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("private", "message"),
    [
        (lambda: key("rsa1024"), "RSA 1024 keys cannot sign Notation signatures"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "EC secp256k1 keys cannot"),
    ],
)
def test_keys_notation_cannot_use_get_no_certificate(private: Any, message: str) -> None:
    with pytest.raises(CertificateRequestError, match=message):
        self_signed_signing_certificate(private(), subject=parse_subject("CN=x"), now=NOW, days=1)


def test_ed25519_keys_get_no_certificate() -> None:
    ed = PrivateKey.generate("ed25519").crypto
    with pytest.raises(CertificateRequestError, match="Ed25519 keys cannot sign Notation signatures"):
        issue_signing_certificate(
            ed.public_key(), subject=parse_subject("CN=x"), now=NOW, days=1, ca_chain=[], ca_key=key("ec256")
        )


@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1])
def test_validity_must_be_sensible(days: int) -> None:
    with pytest.raises(CertificateRequestError, match=f"1 to {MAX_DAYS} days"):
        self_signed_signing_certificate(key("ec256"), subject=parse_subject("CN=x"), now=NOW, days=days)


def test_naive_clock_is_refused() -> None:
    with pytest.raises(CertificateRequestError, match="timezone-aware"):
        self_signed_signing_certificate(
            key("ec256"),
            subject=parse_subject("CN=x"),
            now=datetime(2026, 1, 1),
            days=1,
        )


# --- issued by a CA ----------------------------------------------------------------------------------


def root_ca(kind: str = "ec384", **kw: Any) -> x509.Certificate:
    kw.setdefault("not_before", datetime(2020, 1, 1, tzinfo=UTC))
    return cert(ca_spec("Acme Root", **kw), key(kind))


@pytest.mark.parametrize(
    ("leaf_kind", "ca_kind"), [("ec256", "ec384"), ("rsa2048", "rsa3072"), ("ec521", "rsa2048")]
)
def test_ca_issued_certificate_chains_to_the_root_and_verifies(leaf_kind: str, ca_kind: str) -> None:
    root = root_ca(ca_kind)
    chain_ = issue_signing_certificate(
        key(leaf_kind).public_key(),
        subject=parse_subject(SUBJECT_TEXT),
        now=NOW,
        days=30,
        ca_chain=[root],
        ca_key=key(ca_kind),
    )
    leaf = chain_[0]
    assert chain_ == (leaf, root) and signing_chain_problems(chain_) == []
    assert leaf.issuer == root.subject and leaf.subject != root.subject
    aki = extension(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(key(ca_kind).public_key()).digest
    expected_hash = {"ec384": hashes.SHA384, "rsa3072": hashes.SHA256, "rsa2048": hashes.SHA256}[ca_kind]
    assert isinstance(leaf.signature_hash_algorithm, expected_hash)
    assert verified_with(chain_, PrivateKey(key(leaf_kind)), root)  # type: ignore[arg-type]


def test_an_intermediate_ca_passes_its_chain_through() -> None:
    root = root_ca("ec384")
    intermediate = cert(ca_spec("Acme Signing CA", path_length=0), key("ec256-b"), (root, key("ec384")))
    chain_ = issue_signing_certificate(
        key("ec256").public_key(),
        subject=parse_subject(SUBJECT_TEXT),
        now=NOW,
        days=30,
        ca_chain=[intermediate, root],
        ca_key=key("ec256-b"),
    )
    assert chain_[1:] == (intermediate, root)
    signer = PrivateKey(key("ec256"))  # type: ignore[arg-type]
    assert verified_with(chain_, signer, root) and verified_with(chain_, signer, intermediate)


def test_ca_refusals_name_the_problem() -> None:
    subject = parse_subject("C=US,ST=WA,O=Acme,CN=alice")
    root = root_ca("ec384")
    intermediate = cert(ca_spec("Acme Signing CA"), key("ec256-b"), (root, key("ec384")))
    not_a_ca = cert(CertSpec(), key("ec384-b"))
    short_root = root_ca("rsa2048", not_after=NOW + timedelta(days=10))
    old_root = root_ca("rsa2048-b", not_before=datetime(2000, 1, 1, tzinfo=UTC), not_after=later(-1))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ca_chain": [root], "ca_key": key("ec256-b")}, "is not the key of the CA certificate"),
        ({"ca_chain": [], "ca_key": key("ec384")}, "holds no certificate"),
        (
            {"ca_chain": [short_root], "ca_key": key("rsa2048")},
            r"before the 30 days asked \(at most 10 days\)",
        ),
        ({"ca_chain": [old_root], "ca_key": key("rsa2048-b")}, "the CA chain is not valid now: .*expired"),
        ({"ca_chain": [not_a_ca], "ca_key": key("ec384-b")}, "basicConstraints extension is missing on a CA"),
        ({"ca_chain": [intermediate], "ca_key": key("ec256-b")}, "must be self-signed"),
    ]
    for override, message in cases:
        with pytest.raises(CertificateRequestError, match=message) as e:
            issue_signing_certificate(
                key("ec256").public_key(), subject=subject, now=NOW, days=30, **override
            )
        assert "\n" not in str(e.value)
