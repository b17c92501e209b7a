"""Trust policy documents: validation errors, statement selection, levels and overrides, identities."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from notar.notation import (
    Action,
    Level,
    NoApplicablePolicyError,
    Step,
    StoreRef,
    StoreType,
    TrustedIdentity,
    TrustPolicyError,
    parse_trust_policy,
)
from notar.notation.policy import VerifyTimestamp, parse_distinguished_name, subject_attributes
from tests.notation import factory as f
from tests.notation.conftest import E2E

STATEMENT: dict[str, Any] = {
    "name": "acme",
    "registryScopes": ["registry.acme.example/team/app"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:acme"],
    "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"],
}


def doc(*statements: dict[str, Any], version: Any = "1.0") -> bytes:
    return json.dumps({"version": version, "trustPolicies": list(statements)}).encode()


def statement(**over: Any) -> dict[str, Any]:
    out = copy.deepcopy(STATEMENT)
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def refused(data: bytes, match: str) -> None:
    with pytest.raises(TrustPolicyError, match=match):
        parse_trust_policy(data)


def test_the_e2e_policy_file_parses() -> None:
    document = parse_trust_policy((E2E / "config" / "trustpolicies" / "trustpolicy.json").read_bytes())
    [st] = document.statements
    assert st.name == "e2e" and st.registry_scopes == ("*",) and st.level is Level.STRICT
    assert st.trust_stores == (StoreRef(StoreType.CA, "e2e"),)
    assert st.trusted_identities[0].is_wildcard
    assert st.verify_timestamp is VerifyTimestamp.ALWAYS
    assert document.statement_for("any.registry/any/repo") is st


def test_valid_document_with_everything() -> None:
    st = parse_trust_policy(
        doc(
            statement(
                signatureVerification={
                    "level": "permissive",
                    "override": {"expiry": "enforce", "revocation": "skip"},
                    "verifyTimestamp": "afterCertExpiry",
                },
                trustStores=["ca:acme", "signingAuthority:acme-sa", "tsa:digicert.tsa_1"],
                trustedIdentities=[
                    "x509.subject: C=US, ST=WA, O=Acme, OU=Build",
                    "x509.subject: C=DE, ST=BE, O=Other",
                ],
            )
        )
    ).statements[0]
    assert st.action(Step.EXPIRY) is Action.ENFORCE
    assert st.action(Step.REVOCATION) is Action.SKIP
    assert st.action(Step.AUTHENTIC_TIMESTAMP) is Action.LOG
    assert st.verify_timestamp is VerifyTimestamp.AFTER_CERT_EXPIRY
    assert [str(r) for r in st.stores_of(StoreType.TSA)] == ["tsa:digicert.tsa_1"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("strict", ["enforce"] * 5),
        ("permissive", ["enforce", "enforce", "log", "log", "log"]),
        ("audit", ["enforce", "log", "log", "log", "log"]),
    ],
)
def test_levels(level: str, expected: list[str]) -> None:
    st = parse_trust_policy(doc(statement(signatureVerification={"level": level}))).statements[0]
    assert [st.action(s).value for s in Step] == expected


def test_exact_scope_wins_over_the_wildcard_and_no_match_is_an_error() -> None:
    document = parse_trust_policy(
        doc(
            statement(name="global", registryScopes=["*"]),
            statement(name="app", registryScopes=["registry.acme.example/team/app", "localhost:5000/x"]),
        )
    )
    assert document.statement_for("registry.acme.example/team/app").name == "app"
    assert document.statement_for("localhost:5000/x").name == "app"
    assert document.statement_for("registry.acme.example/team/other").name == "global"
    only_app = parse_trust_policy(doc(statement(name="app")))
    with pytest.raises(
        NoApplicablePolicyError, match="no trust policy statement applies to repository 'a.example/b'"
    ):
        only_app.statement_for("a.example/b")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not json", "malformed JSON"),
        (b"[]", "expected a JSON object"),
        (doc(statement(), version="2.0"), "unsupported trust policy version '2.0'"),
        (doc(statement(), version=None), "unsupported trust policy version None"),
        (doc(), "trustPolicies must be a non-empty list"),
        (
            json.dumps({"version": "1.0", "trustPolicies": [STATEMENT], "extra": 1}).encode(),
            "unknown key\\(s\\) 'extra'",
        ),
        (doc(statement(name="")), "statement 0 has no name"),
        (
            doc(statement(), statement(registryScopes=["a.example/b"])),
            "more than one statement is named 'acme'",
        ),
        (
            doc(statement(name="one", registryScopes=["*"]), statement(name="two", registryScopes=["*"])),
            "wildcard scope '\\*' is in statements 'one' and 'two'",
        ),
        (
            doc(statement(name="one"), statement(name="two")),
            "registry scope 'registry.acme.example/team/app' is in statements",
        ),
        (doc(statement(registryScopes=["*", "a.example/b"])), "cannot be combined with other scopes"),
        (doc(statement(registryScopes=[])), "registryScopes is empty"),
        (doc(statement(registryScopes=["a.example/b", "a.example/b"])), "lists a scope twice"),
        (doc(statement(registryScopes=["app"])), "'app' is not a fully qualified repository"),
        (doc(statement(registryScopes=["a.example/b:v1"])), "is not a fully qualified repository"),
        (
            doc(statement(registryScopes=["a.example/b@sha256:" + "0" * 64])),
            "is not a fully qualified repository",
        ),
        (doc(statement(registryScopes=["https://a.example/b"])), "is not a fully qualified repository"),
        (doc(statement(registryScopes=["a.example/Upper"])), "is not a fully qualified repository"),
        (doc(statement(registryScopes=["*.example/b"])), "is not a fully qualified repository"),
        (doc(statement(signatureVerification=None)), "signatureVerification is missing"),
        (doc(statement(signatureVerification={})), "signatureVerification.level is missing"),
        (
            doc(statement(signatureVerification={"level": "lenient"})),
            "invalid signature verification level 'lenient'",
        ),
        (doc(statement(signatureVerification={"level": "strict", "extra": 1})), "unknown key\\(s\\) 'extra'"),
        (
            doc(statement(signatureVerification={"level": "strict", "override": {"integrity": "log"}})),
            "integrity cannot be overridden",
        ),
        (
            doc(statement(signatureVerification={"level": "strict", "override": {"authenticity": "skip"}})),
            "authenticity cannot be skipped",
        ),
        (
            doc(statement(signatureVerification={"level": "strict", "override": {"expiry": "warn"}})),
            "override action 'warn' for expiry",
        ),
        (
            doc(statement(signatureVerification={"level": "strict", "override": {"signature": "log"}})),
            "override of unknown step 'signature'",
        ),
        (
            doc(
                statement(
                    signatureVerification={"level": "skip", "override": {"expiry": "log"}},
                    trustStores=None,
                    trustedIdentities=None,
                )
            ),
            "level 'skip' cannot be overridden",
        ),
        (
            doc(statement(signatureVerification={"level": "strict", "verifyTimestamp": "never"})),
            "verifyTimestamp 'never'",
        ),
        (
            doc(statement(signatureVerification={"level": "skip"})),
            "level 'skip' takes no trustStores or trustedIdentities",
        ),
        (doc(statement(trustStores=[])), "no trustStores"),
        (doc(statement(trustedIdentities=None)), "no trustedIdentities"),
        (doc(statement(trustStores=["acme"])), "'acme' is not of the form type:name"),
        (doc(statement(trustStores=["x509:acme"])), "unsupported type 'x509'"),
        (doc(statement(trustStores=["ca:../etc"])), "has an invalid name"),
        (doc(statement(trustStores=["ca:a", "ca:a"])), "lists a store twice"),
        (doc(statement(trustedIdentities=["*", "x509.subject: C=US, ST=WA, O=Acme"])), "wildcard identity"),
        (
            doc(statement(trustedIdentities=["C=US, ST=WA, O=Acme"])),
            "must be '\\*' or start with 'x509.subject:'",
        ),
        (doc(statement(trustedIdentities=["x509.subject: C=US, O=Acme"])), "lacks ST"),
        (
            doc(statement(trustedIdentities=["x509.subject: C=US, ST=WA, O=A, O=B"])),
            "attribute O appears more than once",
        ),
        (doc(statement(trustedIdentities=["x509.subject: C=US+ST=WA, O=A"])), "multi-valued RDN"),
        (doc(statement(trustedIdentities=["x509.subject: C=US, ST=WA, O"])), "is not TYPE=value"),
        (
            doc(
                statement(
                    trustedIdentities=[
                        "x509.subject: C=US, ST=WA, O=Acme",
                        "x509.subject: C=US, ST=WA, O=Acme, CN=x",
                    ]
                )
            ),
            "overlap",
        ),
        (doc(statement(trustStores="ca:acme")), "trustStores must be a list of strings"),
        (doc(statement(trustedidentities=["*"])), "unknown key\\(s\\) 'trustedidentities'"),
    ],
)
def test_validation_errors(data: bytes, match: str) -> None:
    refused(data, match)


def test_skip_statement_needs_no_stores() -> None:
    st = parse_trust_policy(
        doc(statement(signatureVerification={"level": "skip"}, trustStores=None, trustedIdentities=None))
    ).statements[0]
    assert st.level is Level.SKIP and all(st.action(s) is Action.SKIP for s in Step)


def test_errors_are_one_line() -> None:
    with pytest.raises(TrustPolicyError) as info:
        parse_trust_policy(doc(statement(trustStores=["x509:acme"])))
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("trust policy statement 'acme': ")


def test_distinguished_name_parsing() -> None:
    assert parse_distinguished_name("C=US, ST=WA, L=Seattle, O=Notary, CN=e2e") == {
        "C": "US",
        "ST": "WA",
        "L": "Seattle",
        "O": "Notary",
        "CN": "e2e",
    }
    assert parse_distinguished_name(r"c=US,st=WA,o=Acme\, Inc.,cn=a\2Bb") == {
        "C": "US",
        "ST": "WA",
        "O": "Acme, Inc.",
        "CN": "a+b",
    }
    assert parse_distinguished_name("C=US, ST=WA, O=Acme, 2.5.4.97=VATDE-1")["2.5.4.97"] == "VATDE-1"
    with pytest.raises(TrustPolicyError, match="empty distinguished name"):
        parse_distinguished_name("  ")
    with pytest.raises(TrustPolicyError, match="dangling escape"):
        parse_distinguished_name("C=US\\")


def _subject(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_identity_matching_is_a_subset_of_the_leaf_subject() -> None:
    leaf = f.name("e2e")  # C=US, ST=WA, L=Seattle, O=Notary, CN=e2e
    what = "test"
    assert TrustedIdentity.parse("*", what=what).matches(leaf)
    assert TrustedIdentity.parse("x509.subject: C=US, ST=WA, O=Notary", what=what).matches(leaf)
    assert TrustedIdentity.parse("x509.subject: CN=e2e, O=Notary, ST=WA, C=US, L=Seattle", what=what).matches(
        leaf
    )
    assert not TrustedIdentity.parse("x509.subject: C=US, ST=WA, O=Notary, CN=other", what=what).matches(leaf)
    assert not TrustedIdentity.parse("x509.subject: C=US, ST=WA, O=notary", what=what).matches(
        leaf
    )  # values exact
    assert not TrustedIdentity.parse("x509.subject: C=US, ST=WA, O=Notary, OU=Build", what=what).matches(leaf)


def test_subjects_that_cannot_be_matched() -> None:
    repeated = _subject(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        (NameOID.ORGANIZATION_NAME, "Acme"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
    )
    assert subject_attributes(repeated) == "the signing certificate subject repeats attribute OU"
    assert not TrustedIdentity.parse("x509.subject: C=US, ST=WA, O=Acme", what="t").matches(repeated)
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")]),
        ]
    )
    assert subject_attributes(multi) == "the signing certificate subject has a multi-valued RDN"


def test_subject_attributes_use_go_short_names() -> None:
    name = _subject(
        (NameOID.SERIAL_NUMBER, "42"),
        (NameOID.STREET_ADDRESS, "Main St"),
        (NameOID.POSTAL_CODE, "98101"),
        (NameOID.EMAIL_ADDRESS, "a@b.example"),
    )
    assert subject_attributes(name) == {
        "SERIALNUMBER": "42",
        "STREET": "Main St",
        "POSTALCODE": "98101",
        "1.2.840.113549.1.9.1": "a@b.example",
    }
