"""The certificate rules, one broken rule per case (and what a valid chain looks like)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from notar.notation import signing_chain_problems, timestamping_chain_problems, validity_problems
from tests.notation import factory as f


def messages(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{p.index}: {p.message}" for p in problems]


def test_valid_chains_have_no_problems() -> None:
    assert signing_chain_problems(f.chain("ec256")) == []
    assert signing_chain_problems(f.chain("rsa2048", root_key="ec384")) == []
    assert signing_chain_problems([f.cert(f.CertSpec(), f.key())]) == []  # self-signed leaf
    root = f.cert(f.ca_spec("root"), f.key("rsa3072"))
    inter = f.cert(f.ca_spec("intermediate", path_length=0), f.key("ec384"), (root, f.key("rsa3072")))
    leaf = f.cert(f.CertSpec(), f.key("ec256"), (inter, f.key("ec384")))
    assert signing_chain_problems([leaf, inter, root]) == []


def test_empty_chain() -> None:
    assert messages(signing_chain_problems([])) == ["0: the certificate chain is empty"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (f.CertSpec(usage=None), "keyUsage extension is missing"),
        (f.CertSpec(usage_critical=False), "keyUsage extension is not marked critical"),
        (f.CertSpec(usage=f.key_usage(content_commitment=True)), "keyUsage lacks digitalSignature"),
        (
            f.CertSpec(usage=f.key_usage(digital_signature=True, key_encipherment=True)),
            "must not include keyEncipherment",
        ),
        (
            f.CertSpec(usage=f.key_usage(digital_signature=True, data_encipherment=True)),
            "must not include dataEncipherment",
        ),
        (
            f.CertSpec(usage=f.key_usage(digital_signature=True, key_agreement=True)),
            "must not include keyAgreement",
        ),
        (
            f.CertSpec(usage=f.key_usage(digital_signature=True, key_cert_sign=True)),
            "must not include keyCertSign",
        ),
        (f.CertSpec(usage=f.key_usage(digital_signature=True, crl_sign=True)), "must not include cRLSign"),
        (
            f.CertSpec(eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
            "extendedKeyUsage is present without codeSigning",
        ),
        (
            f.CertSpec(eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.CLIENT_AUTH]),
            "must not include clientAuth",
        ),
        (
            f.CertSpec(eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]),
            "must not include anyExtendedKeyUsage",
        ),
        (
            f.CertSpec(eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.TIME_STAMPING]),
            "must not include timeStamping",
        ),
        (f.CertSpec(ca=True), "basicConstraints cA is true on a signing (leaf) certificate"),
    ],
)
def test_leaf_rules(spec: f.CertSpec, expected: str) -> None:
    found = messages(signing_chain_problems(f.chain("ec256", leaf=spec)))
    assert any(expected in m and m.startswith("0:") for m in found), found


def test_leaf_without_eku_and_with_ca_false_is_fine() -> None:
    assert signing_chain_problems(f.chain(leaf=f.CertSpec(eku=None, ca=False))) == []


def test_leaf_with_non_repudiation_is_fine() -> None:
    usage = f.key_usage(digital_signature=True, content_commitment=True)
    assert signing_chain_problems(f.chain(leaf=f.CertSpec(usage=usage))) == []


def _with_root(spec: f.CertSpec) -> list[str]:
    root = f.cert(spec, f.key("rsa3072"))
    leaf = f.cert(f.CertSpec(), f.key("ec256"), (root, f.key("rsa3072")))
    return messages(signing_chain_problems([leaf, root]))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (f.ca_spec(ca=None), "basicConstraints extension is missing on a CA certificate"),
        (f.ca_spec(basic_critical=False), "basicConstraints extension is not marked critical"),
        (f.ca_spec(ca=False), "basicConstraints cA is false on a CA certificate"),
        (f.ca_spec(usage=None), "keyUsage extension is missing"),
        (f.ca_spec(usage=f.key_usage(crl_sign=True)), "keyUsage lacks keyCertSign"),
        (f.ca_spec(usage_critical=False), "keyUsage extension is not marked critical"),
    ],
)
def test_ca_rules(spec: f.CertSpec, expected: str) -> None:
    found = _with_root(spec)
    assert any(expected in m and m.startswith("1:") for m in found), found


def test_sha1_signatures_are_refused() -> None:
    root = f.cert(f.ca_spec("root"), f.key("rsa3072"))
    leaf = f.sha1_resign(f.cert(f.CertSpec(), f.key("rsa2048"), (root, f.key("rsa3072"))), f.key("rsa3072"))
    assert "0: signed with sha1; only SHA-256, SHA-384 and SHA-512 are allowed" in messages(
        signing_chain_problems([leaf, root])
    )
    sha1_root = f.sha1_resign(root, f.key("rsa3072"))
    leaf = f.cert(f.CertSpec(), f.key("ec256"), (root, f.key("rsa3072")))
    assert "1: signed with sha1; only SHA-256, SHA-384 and SHA-512 are allowed" in messages(
        signing_chain_problems([leaf, sha1_root])
    )


def test_path_length_constraint() -> None:
    root = f.cert(f.ca_spec("root", path_length=0), f.key("rsa3072"))
    inter = f.cert(f.ca_spec("intermediate"), f.key("ec384"), (root, f.key("rsa3072")))
    leaf = f.cert(f.CertSpec(), f.key("ec256"), (inter, f.key("ec384")))
    assert messages(signing_chain_problems([leaf, inter, root])) == [
        "2: pathLenConstraint 0 is less than the 1 CA(s) below it"
    ]


def test_key_size_rules() -> None:
    found = messages(signing_chain_problems(f.chain("rsa1024")))
    assert "0: RSA key of 1024 bits; at least 2048 are required" in found
    found = messages(signing_chain_problems(f.chain("ec224")))
    assert "0: EC key on secp224r1; only P-256, P-384 and P-521 are allowed" in found
    found = _with_root(f.ca_spec())
    assert found == []


def test_chain_order_and_issuance() -> None:
    leaf, root = f.chain()
    found = messages(signing_chain_problems([root, leaf]))
    assert any("not issued by the next certificate" in m for m in found)
    other_root = f.cert(f.ca_spec("root"), f.key("rsa3072-b"))  # same name, other key
    found = messages(signing_chain_problems([leaf, other_root]))
    assert found == ["0: not issued by the next certificate: signature does not verify with the issuer's key"]


def test_last_certificate_must_be_self_signed() -> None:
    root = f.cert(f.ca_spec("root"), f.key("rsa3072"))
    inter = f.cert(f.ca_spec("intermediate"), f.key("ec384"), (root, f.key("rsa3072")))
    leaf = f.cert(f.CertSpec(), f.key("ec256"), (inter, f.key("ec384")))
    found = messages(signing_chain_problems([leaf, inter]))
    assert found == [
        "1: the last certificate of the chain must be self-signed: issuer 'CN=root,O=Notary,L=Seattle,ST=WA,C=US'"
        " is not the subject of the next certificate"
    ]


def test_validity_problems() -> None:
    spec = f.CertSpec(not_before=datetime(2030, 1, 1, tzinfo=UTC), not_after=datetime(2031, 1, 1, tzinfo=UTC))
    chain = f.chain(leaf=spec)
    assert messages(validity_problems(chain, f.NOW)) == ["0: not valid before 2030-01-01T00:00:00+00:00"]
    assert messages(validity_problems(chain, datetime(2032, 1, 1, tzinfo=UTC))) == [
        "0: expired at 2031-01-01T00:00:00+00:00"
    ]
    assert validity_problems(chain, datetime(2030, 6, 1, tzinfo=UTC)) == []


def test_problems_print_as_one_line() -> None:
    [problem] = signing_chain_problems(f.chain(leaf=f.CertSpec(usage_critical=False)))
    assert (
        str(problem)
        == "certificate 0 (CN=leaf,O=Notary,L=Seattle,ST=WA,C=US): keyUsage extension is not marked critical"
    )


def test_timestamping_chain_rules() -> None:
    root = f.cert(f.ca_spec("tsa-root"), f.key("rsa2048"))
    tsa = f.cert(f.tsa_spec(), f.key("ec384"), (root, f.key("rsa2048")))
    assert timestamping_chain_problems([tsa, root]) == []
    not_critical = f.cert(f.tsa_spec(eku_critical=False), f.key("ec384"), (root, f.key("rsa2048")))
    assert "0: extendedKeyUsage of the TSA certificate is not marked critical" in messages(
        timestamping_chain_problems([not_critical, root])
    )
    code_signing = f.cert(f.CertSpec(subject=f.name("tsa")), f.key("ec384"), (root, f.key("rsa2048")))
    found = messages(timestamping_chain_problems([code_signing, root]))
    assert "0: extendedKeyUsage of the TSA certificate must be timeStamping only" in found
    no_eku = f.cert(f.tsa_spec(eku=None), f.key("ec384"), (root, f.key("rsa2048")))
    assert "0: extendedKeyUsage is missing on the TSA certificate" in messages(
        timestamping_chain_problems([no_eku, root])
    )
    assert messages(timestamping_chain_problems([])) == ["0: the TSA certificate chain is empty"]


def test_vector_certificates_meet_the_rules() -> None:
    from cryptography import x509

    from tests.notation.conftest import E2E

    for file_name in ("e2e.crt", "new_e2e.crt"):
        certs = x509.load_pem_x509_certificates((E2E / "config" / "localkeys" / file_name).read_bytes())
        assert signing_chain_problems(certs) == [], file_name
    [expired] = x509.load_pem_x509_certificates(
        (E2E / "config" / "localkeys" / "expired_e2e.crt").read_bytes()
    )
    assert validity_problems([expired], f.NOW) != []
